/**
 * virt-df's CSV quoting: a field is quoted only when it contains a space, a
 * double quote, a newline or a comma; quotes inside are doubled.
 */
export function csvField(field: string): string {
  if (!/[ ",\n]/.test(field)) return field;
  return `"${field.replace(/"/g, '""')}"`;
}

export function csvLine(fields: string[]): string {
  return fields.map(csvField).join(',');
}
