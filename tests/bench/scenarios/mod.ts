/**
 * The registry of benchmark scenarios, in the order they run. Adding a
 * scenario is one file in this folder plus one line here.
 *
 * @module
 */
import type { Scenario } from "../_scenario.ts";
import { chainBulk } from "./chain_bulk.ts";
import { chainHttp } from "./chain_http.ts";
import { connectBulk } from "./connect_bulk.ts";
import { forwardHttp } from "./forward_http.ts";
import { httpMapping } from "./http_mapping.ts";
import { mux } from "./mux.ts";
import { socks5Bulk } from "./socks5_bulk.ts";
import { tcpMapping } from "./tcp_mapping.ts";
import { tunnelLatency } from "./tunnel_latency.ts";
import { idleMemory } from "./idle_memory.ts";
import { reverseProxy } from "./reverse_proxy.ts";
import { fileServer } from "./file_server.ts";
import { httpMappingLocaltunnel } from "./http_mapping_localtunnel.ts";
import { rssUnderLoad } from "./rss_under_load.ts";

/** Every scenario, in running order. */
export const SCENARIOS: readonly Scenario[] = [
  forwardHttp,
  connectBulk,
  socks5Bulk,
  mux,
  chainBulk,
  chainHttp,
  tcpMapping,
  httpMapping,
  tunnelLatency,
  idleMemory,
  reverseProxy,
  fileServer,
  httpMappingLocaltunnel,
  rssUnderLoad,
];
