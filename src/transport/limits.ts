/**
 * Limits on GraphQL documents, applied as validation rules wherever a document is validated (the
 * HTTP fast path, graphql-yoga, the stream endpoints): selection depth and aliases, with the
 * well-known rules of graphql-armor. A document past a limit is refused before anything runs.
 */
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import type { ValidationRule } from 'graphql';
import type { TidingsConfig } from '../config.js';

/** The validation rules for `TIDINGS_MAX_DEPTH` and `TIDINGS_MAX_ALIASES`. */
export function limitRules(
  config: Pick<TidingsConfig, 'maxDepth' | 'maxAliases'>,
): ValidationRule[] {
  return [
    maxDepthRule({
      n: config.maxDepth,
      // GraphiQL's introspection query is deeper than any useful operation; parsing is capped
      // at 10,000 tokens anyway.
      ignoreIntrospection: true,
      flattenFragments: true,
      errorMessage: `Query too deep (TIDINGS_MAX_DEPTH=${config.maxDepth}): select fewer nested levels.`,
      exposeLimits: false,
    }),
    maxAliasesRule({
      n: config.maxAliases,
      errorMessage: `Too many aliases (TIDINGS_MAX_ALIASES=${config.maxAliases}): use fewer, or several requests.`,
      exposeLimits: false,
    }),
  ];
}
