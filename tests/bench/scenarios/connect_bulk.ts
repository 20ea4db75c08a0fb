/**
 * connect_bulk: one-connection bulk throughput through wmproxy's HTTP CONNECT
 * vs `socat -b 262144` forwarding, to the same sink. Target (DESIGN.md §9):
 * ≥ 0.9× socat.
 *
 * @module
 */
import type { Scenario } from "../_scenario.ts";
import { bulkScenario } from "./_bulk.ts";

/** The HTTP CONNECT bulk scenario. */
export const connectBulk: Scenario = bulkScenario(
  "connect_bulk",
  "http",
  "bulk MB/s through wmproxy HTTP CONNECT vs socat -b 262144 to one sink (≥ 0.9× socat)",
);
