/**
 * Limits on GraphQL documents, applied as validation rules wherever a document is validated (the
 * HTTP fast path, graphql-yoga, the stream endpoints): selection depth and aliases, with the
 * well-known rules of graphql-armor. A document past a limit is refused before anything runs.
 */
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { GraphQLError, type ValidationRule } from 'graphql';
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

/**
 * Deepest nesting of `{`, `(` and `[` the parser is given. graphql-js parses recursively, so a
 * document nested thousands of levels deep would overflow the stack before any validation rule
 * could refuse it; this check runs on the text first.
 */
export const MAX_NESTING = 256;

/**
 * Refuses a query whose brackets nest deeper than {@link MAX_NESTING}, scanning the text once
 * (strings, block strings and comments are skipped).
 * @throws GraphQLError saying how to fix it.
 */
export function checkNesting(query: string): void {
  let depth = 0;
  for (let i = 0; i < query.length; i++) {
    const c = query.charCodeAt(i);
    if (c === 0x23 /* # */) {
      while (i < query.length && query[i] !== '\n' && query[i] !== '\r') i++;
    } else if (c === 0x22 /* " */) {
      const block = query.startsWith('"""', i);
      const close = block ? '"""' : '"';
      i += block ? 3 : 1;
      while (i < query.length && !query.startsWith(close, i)) i += query[i] === '\\' ? 2 : 1;
      i += close.length - 1;
    } else if (c === 0x7b || c === 0x28 || c === 0x5b /* { ( [ */) {
      if (++depth > MAX_NESTING) {
        throw new GraphQLError(
          `Query too deep: brackets nest more than ${MAX_NESTING} levels; select fewer nested levels.`,
          { extensions: { code: 'BAD_USER_INPUT' } },
        );
      }
    } else if (c === 0x7d || c === 0x29 || c === 0x5d /* } ) ] */) {
      depth--;
    }
  }
}
