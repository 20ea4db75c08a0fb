/** The program's version; the release workflow checks it against the tag. */
export const VERSION = "0.1.0";
