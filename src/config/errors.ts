/** One problem found in a configuration, with where it is. */
export interface ConfigIssue {
  /** Key path, e.g. `proxy.users[1].password`; `""` for the whole document. */
  path: string;
  /** What is wrong, e.g. `expected host:port, got "abc"`. */
  message: string;
  /** 1-based line in the source file, when the parser knows it. */
  line?: number;
}

/** Formats one issue as `path (line N): message`. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.path === "" ? "(document)" : issue.path;
  const line = issue.line === undefined ? "" : ` (line ${issue.line})`;
  return `${where}${line}: ${issue.message}`;
}

/** Every problem of a configuration at once; thrown by the config pipeline. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  readonly source: string;

  constructor(source: string, issues: readonly ConfigIssue[]) {
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super(
      `Cannot load config ${JSON.stringify(source)}: ${count}\n` +
        issues.map((i) => `  ${formatIssue(i)}`).join("\n"),
    );
    this.name = "ConfigError";
    this.issues = issues;
    this.source = source;
  }
}
