import { TLS } from "../transport/_pairs.ts";
import { registerConformance } from "./_conformance.ts";

registerConformance(TLS);
