import { deepEqual, equal } from "node:assert/strict";
import {
  canReceive,
  canSend,
  STREAM_TRANSITIONS,
  type StreamEvent,
  type StreamState,
  transition,
} from "@/mux/mod.ts";

const STATES: StreamState[] = ["open", "local_closed", "remote_closed", "closed", "reset"];
const EVENTS: StreamEvent[] = ["send_fin", "recv_fin", "recv_data", "send_rst", "recv_rst"];

Deno.test("transition() implements the state table of PROTOCOL.md §9", () => {
  // Every one of the 25 cells, so that no entry can change unnoticed.
  const table: Record<StreamState, Record<StreamEvent, string>> = {
    open: {
      send_fin: "local_closed",
      recv_fin: "remote_closed",
      recv_data: "open",
      send_rst: "reset",
      recv_rst: "reset",
    },
    local_closed: {
      send_fin: "local_error",
      recv_fin: "closed",
      recv_data: "local_closed",
      send_rst: "reset",
      recv_rst: "reset",
    },
    remote_closed: {
      send_fin: "closed",
      recv_fin: "peer_error",
      recv_data: "peer_error",
      send_rst: "reset",
      recv_rst: "reset",
    },
    closed: {
      send_fin: "local_error",
      recv_fin: "closed",
      recv_data: "closed",
      send_rst: "closed",
      recv_rst: "closed",
    },
    reset: {
      send_fin: "local_error",
      recv_fin: "reset",
      recv_data: "reset",
      send_rst: "reset",
      recv_rst: "reset",
    },
  };
  for (const state of STATES) {
    for (const event of EVENTS) {
      equal(transition(state, event), table[state][event], `${state} + ${event}`);
    }
  }
  deepEqual(Object.keys(STREAM_TRANSITIONS).sort(), [...STATES].sort());
});

Deno.test("canSend() and canReceive() hold exactly in the half-open states of PROTOCOL.md §9", () => {
  const expected: Record<StreamState, [send: boolean, receive: boolean]> = {
    open: [true, true],
    local_closed: [false, true],
    remote_closed: [true, false],
    closed: [false, false],
    reset: [false, false],
  };
  for (const state of STATES) {
    equal(canSend(state), expected[state][0], `canSend(${state})`);
    equal(canReceive(state), expected[state][1], `canReceive(${state})`);
  }
  // An unknown state (e.g. from a corrupted value) is neither.
  equal(canSend("" as StreamState), false);
  equal(canReceive("" as StreamState), false);
});
