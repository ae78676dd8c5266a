// Fails when src/generated/openapi.ts is not what openapi-typescript makes of
// the committed ../openapi.json (a wire model changed without `npm run generate`).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ai-ide-types-'));
try {
  const fresh = join(dir, 'openapi.ts');
  execFileSync(
    join(root, 'node_modules', '.bin', 'openapi-typescript'),
    ['../openapi.json', '--default-non-nullable', 'false', '--output', fresh],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const committed = readFileSync(join(root, 'src', 'generated', 'openapi.ts'), 'utf8');
  if (readFileSync(fresh, 'utf8') !== committed) {
    console.error('src/generated/openapi.ts is out of date with ../openapi.json: run npm run generate');
    process.exit(1);
  }
  console.log('generated types match sdk/openapi.json');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
