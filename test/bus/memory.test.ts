/** The memory bus against the bus contract: one instance, in order, nothing lost. */
import { createMemoryBus } from '../../src/bus/memory.js';
import { testEventBus } from './contract.js';

testEventBus('memory', async () => createMemoryBus(), {
  delivery: { ordered: true, lossless: true, shared: false },
  capabilities: [],
});
