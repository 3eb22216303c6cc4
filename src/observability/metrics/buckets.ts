/** Latency buckets shared by reconciles, queue work and provider calls: 5 ms to a minute. */
export const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
