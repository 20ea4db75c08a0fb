/**
 * The tunnel protocol of PROTOCOL.md: constants, the frame codec, control
 * messages, the preamble and the HMAC auth proof. Pure: no `Deno.*`.
 *
 * @module
 */
export * from "./constants.ts";
export { ProtocolError } from "./protocol_error.ts";
export {
  checkFrameHeader,
  decodeFrameHeader,
  encodeFrame,
  FrameDecoder,
  hasPayload,
  readU32,
  writeFrameHeader,
  writeU32,
} from "./frame.ts";
export type { Frame, FrameHeader, FrameInput } from "./frame.ts";
export {
  CONTROL_MESSAGE_TYPES,
  decodeControlMessage,
  encodeControlMessage,
  HANDSHAKE_MESSAGE_TYPES,
  parseControlMessage,
} from "./control.ts";
export type {
  Address,
  AuthFailedMessage,
  AuthMessage,
  AuthOkMessage,
  ClientHelloMessage,
  ControlMessage,
  DomainMappingSpec,
  HeaderRuleSpec,
  HttpOptionsSpec,
  MappingResult,
  MappingSpec,
  OpenMappingMessage,
  OpenMessage,
  OpenProxyMessage,
  PortMappingSpec,
  RegisterMessage,
  RegisterResultMessage,
  ServerHelloMessage,
  SessionControlMessage,
  UnregisterMessage,
} from "./control.ts";
export { decodePreamble, encodePreamble, exchangePreamble } from "./preamble.ts";
export type { ExchangePreambleOptions, PreambleConn } from "./preamble.ts";
export {
  computeClientProof,
  computeServerProof,
  fromHex,
  generateNonce,
  toHex,
  verifyClientProof,
  verifyServerProof,
} from "./auth_proof.ts";
