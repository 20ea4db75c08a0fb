/** Assertions for the tunnel tests (node:assert/strict, DESIGN.md §4). */
export { deepStrictEqual, equal as assertEquals, ok, rejects, throws } from "node:assert/strict";
