/**
 * The error of a node whose `with`, once evaluated, its type's
 * `optionsSchema` refuses: `invalid options for log: with.level: …`, with
 * the schema's issues kept (each field's path in `with`, and its message),
 * so that the run can say where in the flow file the offending field is (see
 * `placedOptionsError`). A leaf module: the sandboxed node's Worker builds
 * the same error, and sends its issues to the host.
 *
 * @module
 */

/** One problem the schema found: the field's path under `with` (empty: `with` itself). */
export interface OptionsIssue {
  path: string[];
  message: string;
}

/** `with.a.b: message`, or the message alone for `with` itself. */
export function issueText(issue: OptionsIssue): string {
  return issue.path.length ? `with.${issue.path.join(".")}: ${issue.message}` : issue.message;
}

/** A `TypeError` (as it always was) that keeps the node type and the schema's issues. */
export class OptionsError extends TypeError {
  /** The node's type, as the flow writes it. */
  readonly nodeType: string;
  /** What the schema refused. */
  readonly issues: readonly OptionsIssue[];

  /** `invalid options for <type>: <each issue>`. */
  constructor(nodeType: string, issues: readonly OptionsIssue[]) {
    super(`invalid options for ${nodeType}: ${issues.map(issueText).join("; ")}`);
    this.nodeType = nodeType;
    this.issues = issues;
  }
}

/**
 * A Standard Schema's issues as {@linkcode OptionsIssue}s: each path's keys
 * as text (a path segment may be `{ key }`).
 */
export function optionsIssues(
  issues: readonly { message: string; path?: readonly unknown[] }[],
): OptionsIssue[] {
  return issues.map((issue) => ({
    path: (issue.path ?? []).map((p) =>
      String(typeof p === "object" && p !== null ? (p as { key: unknown }).key : p)
    ),
    message: issueMessage(issue),
  }));
}

/**
 * A schema issue's message; for a record's key the schema refused (zod's
 * `invalid_key`, whose own message is only "Invalid key in record"), the
 * message of why the key was refused.
 */
export function issueMessage(issue: { message: string }): string {
  const { code, issues } = issue as { code?: unknown; issues?: unknown };
  if (code === "invalid_key" && Array.isArray(issues)) {
    const first: unknown = issues[0];
    if (typeof first === "object" && first !== null) {
      const message = (first as { message?: unknown }).message;
      if (typeof message === "string") return message;
    }
  }
  return String(issue.message);
}
