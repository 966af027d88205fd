// A small line diff (longest common subsequence) for the flow versions view.
// Pure functions, no DOM: tests import this module directly.

/** Cells of the LCS table above which the middle is shown as removed + added whole. */
export const MAX_CELLS = 4_000_000;

/**
 * Split text into lines (a final newline does not make an empty last line).
 * @param {string} text
 * @returns {string[]}
 */
export function splitLines(text) {
  if (text === "") return [];
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * The line diff of `a` into `b`: one row per line, `op` " " (both), "-" (only
 * in a) or "+" (only in b), with its 1-based line numbers `aLine`/`bLine`.
 * Common prefix and suffix are matched first; the rest by LCS (deletions
 * before insertions in each changed stretch).
 * @param {string} aText
 * @param {string} bText
 * @returns {{ op: " " | "-" | "+", text: string, aLine?: number, bLine?: number }[]}
 */
export function diffLines(aText, bText) {
  const a = splitLines(aText);
  const b = splitLines(bText);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const rows = [];
  for (let i = 0; i < start; i++) rows.push({ op: " ", text: a[i], aLine: i + 1, bLine: i + 1 });
  const middle = lcsRows(a, start, endA, b, start, endB);
  rows.push(...middle);
  for (let i = endA, j = endB; i < a.length; i++, j++) {
    rows.push({ op: " ", text: a[i], aLine: i + 1, bLine: j + 1 });
  }
  return rows;
}

function lcsRows(a, a0, a1, b, b0, b1) {
  const n = a1 - a0;
  const m = b1 - b0;
  const rows = [];
  if (n === 0 && m === 0) return rows;
  if (n === 0 || m === 0 || (n + 1) * (m + 1) > MAX_CELLS) {
    for (let i = a0; i < a1; i++) rows.push({ op: "-", text: a[i], aLine: i + 1 });
    for (let j = b0; j < b1; j++) rows.push({ op: "+", text: b[j], bLine: j + 1 });
    return rows;
  }
  // table[i][j] = LCS length of a[a0+i..a1) and b[b0+j..b1), row-major.
  const width = m + 1;
  const table = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i * width + j] = a[a0 + i] === b[b0 + j]
        ? table[(i + 1) * width + j + 1] + 1
        : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[a0 + i] === b[b0 + j]) {
      rows.push({ op: " ", text: a[a0 + i], aLine: a0 + i + 1, bLine: b0 + j + 1 });
      i++;
      j++;
    } else if (j >= m || (i < n && table[(i + 1) * width + j] >= table[i * width + j + 1])) {
      rows.push({ op: "-", text: a[a0 + i], aLine: a0 + i + 1 });
      i++;
    } else {
      rows.push({ op: "+", text: b[b0 + j], bLine: b0 + j + 1 });
      j++;
    }
  }
  return rows;
}

/**
 * Rows grouped into hunks: changed rows with up to `context` unchanged rows
 * around them; unchanged stretches between hunks are left out (those shorter
 * than 3 rows are kept: skipping them would save nothing).
 * @param {{ op: string }[]} rows
 * @param {number} [context]
 * @returns {{ rows: typeof rows, skippedBefore: number }[]}
 */
export function hunks(rows, context = 3) {
  const keep = new Uint8Array(rows.length);
  rows.forEach((row, index) => {
    if (row.op === " ") return;
    const from = Math.max(0, index - context);
    const to = Math.min(rows.length - 1, index + context);
    for (let k = from; k <= to; k++) keep[k] = 1;
  });
  // A gap of fewer than 3 unchanged rows between two hunks is shown, not skipped.
  for (let i = 0; i < rows.length;) {
    if (keep[i]) {
      i++;
      continue;
    }
    let j = i;
    while (j < rows.length && !keep[j]) j++;
    if (i > 0 && j < rows.length && j - i < 3) keep.fill(1, i, j);
    i = j;
  }
  const out = [];
  let current = null;
  let skipped = 0;
  rows.forEach((row, index) => {
    if (!keep[index]) {
      current = null;
      skipped++;
      return;
    }
    if (current === null) {
      current = { rows: [], skippedBefore: skipped };
      skipped = 0;
      out.push(current);
    }
    current.rows.push(row);
  });
  return out;
}

/**
 * Counts of added and removed lines.
 * @param {{ op: string }[]} rows
 */
export function diffStats(rows) {
  let added = 0;
  let removed = 0;
  for (const row of rows) {
    if (row.op === "+") added++;
    else if (row.op === "-") removed++;
  }
  return { added, removed };
}
