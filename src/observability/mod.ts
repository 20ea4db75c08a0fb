/**
 * Logging, the event vocabulary and latency histograms.
 *
 * @module
 */
export { errorMessage, Logger, MemorySink, STDERR_SINK } from "./log.ts";
export type { LogFields, LogFormat, LoggerOptions, LogLevel, LogSink } from "./log.ts";
export { EVENTS } from "./events.ts";
export { InternalErrors } from "./internal_errors.ts";
export type { EventName } from "./events.ts";
export { Histogram, LATENCY_BUCKETS_S, MAX_HISTOGRAM_BUCKETS } from "./histogram.ts";
export type { HistogramSample, HistogramSnapshot } from "./histogram.ts";
