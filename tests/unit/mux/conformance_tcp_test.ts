import { TCP } from "../transport/_pairs.ts";
import { registerConformance } from "./_conformance.ts";

registerConformance(TCP);
