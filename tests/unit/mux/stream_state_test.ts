import { equal } from "node:assert/strict";
import { STREAM_TRANSITIONS, type StreamEvent, type StreamState, transition } from "@/mux/mod.ts";

Deno.test("transition() implements the state table of PROTOCOL.md §9", () => {
  const table: [StreamState, StreamEvent, string][] = [
    ["open", "send_fin", "local_closed"],
    ["open", "recv_fin", "remote_closed"],
    ["open", "recv_data", "open"],
    ["open", "send_rst", "reset"],
    ["open", "recv_rst", "reset"],
    ["local_closed", "recv_fin", "closed"],
    ["local_closed", "send_fin", "local_error"],
    ["local_closed", "recv_data", "local_closed"],
    ["local_closed", "recv_rst", "reset"],
    ["remote_closed", "send_fin", "closed"],
    ["remote_closed", "recv_fin", "peer_error"],
    ["remote_closed", "recv_data", "peer_error"],
    ["remote_closed", "send_rst", "reset"],
    ["closed", "send_rst", "closed"],
    ["closed", "recv_data", "closed"],
    ["closed", "send_fin", "local_error"],
    ["reset", "recv_data", "reset"],
    ["reset", "recv_fin", "reset"],
    ["reset", "send_fin", "local_error"],
  ];
  for (const [state, event, next] of table) {
    equal(transition(state, event), next, `${state} + ${event}`);
  }
  equal(Object.keys(STREAM_TRANSITIONS).length, 5);
});
