import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RestartPolicy, describeStop } from "../src/restartPolicy";

describe("RestartPolicy", () => {
  it("restarts after a doubling delay", () => {
    const policy = new RestartPolicy();
    const delays = [0, 1, 2, 3, 4].map((i) => policy.onCrash(1000 * i).delayMs);
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000]);
  });

  it("gives up after too many stops in the window, until reset", () => {
    const policy = new RestartPolicy();
    for (let i = 0; i < 5; i += 1) {
      assert.equal(policy.onCrash(i).restart, true);
    }
    const sixth = policy.onCrash(10);
    assert.equal(sixth.restart, false);
    assert.equal(sixth.crashes, 6);
    policy.reset();
    assert.deepEqual(policy.onCrash(20), { restart: true, delayMs: 1000, crashes: 1 });
  });

  it("forgets stops older than the window", () => {
    const policy = new RestartPolicy({ maxCrashes: 2, windowMs: 100, firstDelayMs: 10, maxDelayMs: 1000 });
    policy.onCrash(0);
    policy.onCrash(50);
    assert.equal(policy.onCrash(60).restart, false);
    assert.deepEqual(policy.onCrash(500), { restart: true, delayMs: 10, crashes: 1 });
  });
});

describe("describeStop", () => {
  it("says when the server comes back, or how to bring it back", () => {
    assert.match(describeStop({ restart: true, delayMs: 2000, crashes: 2 }), /restarting it in 2 s/);
    assert.match(describeStop({ restart: false, delayMs: 0, crashes: 6 }), /Restart Server/);
  });
});
