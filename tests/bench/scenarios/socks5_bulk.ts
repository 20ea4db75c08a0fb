/**
 * socks5_bulk: one-connection bulk throughput through wmproxy's SOCKS5 CONNECT
 * vs `socat -b 262144` forwarding, to the same sink. Target (DESIGN.md §9):
 * ≥ 0.9× socat.
 *
 * @module
 */
import type { Scenario } from "../_scenario.ts";
import { bulkScenario } from "./_bulk.ts";

/** The SOCKS5 CONNECT bulk scenario. */
export const socks5Bulk: Scenario = bulkScenario(
  "socks5_bulk",
  "socks5",
  "bulk MB/s through wmproxy SOCKS5 CONNECT vs socat -b 262144 to one sink (≥ 0.9× socat)",
);
