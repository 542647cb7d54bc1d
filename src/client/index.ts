/** What applications import from skyha (`skyha/client`). */
export { BarrierClient, BarrierError, type BarrierClientOptions } from './barrier.js';
