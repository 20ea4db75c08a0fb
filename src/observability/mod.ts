/**
 * Logging and the event vocabulary.
 *
 * @module
 */
export { errorMessage, Logger, MemorySink, STDERR_SINK } from "./log.ts";
export type { LogFields, LogFormat, LoggerOptions, LogLevel, LogSink } from "./log.ts";
export { EVENTS } from "./events.ts";
export type { EventName } from "./events.ts";
