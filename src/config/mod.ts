/**
 * Configuration: types, the load pipeline, defaults and secrets.
 *
 * @module
 */
export { formatOf, loadConfig, parseConfig } from "./load.ts";
export type { ConfigFormat, ParseConfigOptions } from "./load.ts";
export { ConfigError, formatIssue } from "./errors.ts";
export type { ConfigIssue } from "./errors.ts";
export { Secret } from "./secret.ts";
export { parseDuration, parseSize } from "./units.ts";
export { parseMapFlag } from "./map_flag.ts";
export { validateMappings } from "./validate.ts";
export { compact, ConfigReader, describe, formatPath } from "./reader.ts";
export type { KeyPath, Locate } from "./reader.ts";
export * from "./defaults.ts";
export type {
  ClientInput,
  ConfigInput,
  LogInput,
  MappingInput,
  ProxyInput,
  ServerInput,
} from "./input.ts";
export type * from "./types.ts";
export { completeStreamSection, readStreamSection, wsProxyStreamConfig } from "./stream_section.ts";
export type {
  StreamConfig,
  StreamProtocol,
  StreamServerConfig,
  WsProxyArgs,
} from "./stream_section.ts";
export type { UpstreamGroupConfig } from "./upstream_section.ts";
export { configKey, sameConfig } from "./compare.ts";
