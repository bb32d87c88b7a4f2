/**
 * KEY=VALUE files in shell syntax, as os-release(5), lsb-release and
 * /etc/sysconfig/* write them: quoted (single or double) or bare values,
 * backslash escapes inside double quotes, comments and blank lines ignored.
 * Values a guest controls are kept as they are; display escapes them later.
 */
export function parseShellVars(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    vars.set(m[1], unquote(m[2].trim()));
  }
  return vars;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\([\\"$`])/g, '$1');
  // Bare: up to an unquoted comment.
  return v.replace(/\s+#.*$/, '');
}
