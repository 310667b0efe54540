/**
 * Kafka's rule for topic names, in one place: 1 to 249 characters of ASCII letters, digits, '.', '_' and
 * '-', and not '.' or '..' (Kafka refuses both: they would be directory names of their own meaning).
 */
const LEGAL = /^[a-zA-Z0-9._-]{1,249}$/

/** What the rule allows, for error messages. */
export const TOPIC_NAME_RULE = "a Kafka topic name (1–249 of [a-zA-Z0-9._-], not '.' or '..')"

export function isTopicName(name: unknown): name is string {
  return typeof name === 'string' && LEGAL.test(name) && name !== '.' && name !== '..'
}
