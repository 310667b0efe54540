/** A possibly schema-qualified name as a quoted identifier: events → "events", app.events → "app"."events". */
export function quoteName(name: string): string {
  return name
    .split('.')
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join('.')
}
