import { AIIDE } from '@ai-ide/sdk';

const client = new AIIDE({
  apiKey: 'your-api-key',
  baseUrl: 'https://api.rust-ai-ide.dev/v1'
});

// Code completion
const completion = await client.ai.inference.completion({
  modelId: 'tiny-qwen',
  context: {
    language: 'rust',
    code: 'fn main() {',
    cursorPosition: 12
  }
});

console.log(completion.text);
