/**
 * The SQL rendering of filter clauses, shared by the SQLite and PostgreSQL stores: the dialects
 * differ only in placeholders and in how a prefix is matched. It mirrors the in-memory matcher
 * (`matchesClauses` in `src/events/filter.ts`) clause for clause.
 */
import type { Clause, FilterField } from '../events/filter.js';

/** How a store names its columns and placeholders. */
export interface SqlDialect {
  /** The column holding `field`. */
  column(field: FilterField): string;
  /** The placeholder for the n-th (1-based) parameter: `?` for SQLite, `$n` for PostgreSQL. */
  placeholder(n: number): string;
  /**
   * A case-sensitive "column starts with prefix" test. `bind` adds a parameter and returns its
   * placeholder; the dialect escapes its own wildcards.
   */
  startsWith(column: string, prefix: string, bind: (value: string) => string): string;
}

/**
 * Renders clauses as a SQL boolean expression plus its parameters, continuing the numbering after
 * `offset` existing parameters. An empty clause list renders as `1=1`.
 */
export function clausesToSql(
  clauses: readonly Clause[],
  dialect: SqlDialect,
  offset = 0,
): { sql: string; params: (string | number)[] } {
  const params: (string | number)[] = [];
  const bind = (v: string | number): string => {
    params.push(v);
    return dialect.placeholder(offset + params.length);
  };
  const parts: string[] = [];
  for (const clause of clauses) {
    if (clause.kind === 'none') return { sql: '1=0', params: [] };
    const col = dialect.column(clause.field);
    switch (clause.kind) {
      case 'match': {
        const ors: string[] = [];
        if (clause.values.length === 1) ors.push(`${col} = ${bind(clause.values[0] as string)}`);
        else if (clause.values.length > 1) {
          ors.push(`${col} IN (${clause.values.map(bind).join(', ')})`);
        }
        for (const p of clause.prefixes) ors.push(dialect.startsWith(col, p, bind));
        parts.push(ors.length === 1 ? (ors[0] as string) : `(${ors.join(' OR ')})`);
        break;
      }
      case 'nullOr': {
        const ors = [`${col} IS NULL`, ...clause.values.map((v) => `${col} = ${bind(v)}`)];
        parts.push(`(${ors.join(' OR ')})`);
        break;
      }
      case 'notIn': {
        parts.push(`${col} NOT IN (${clause.values.map(bind).join(', ')})`);
        break;
      }
      case 'range': {
        if (clause.gte !== null) parts.push(`${col} >= ${bind(clause.gte)}`);
        if (clause.lt !== null) parts.push(`${col} < ${bind(clause.lt)}`);
        break;
      }
    }
  }
  return { sql: parts.length ? parts.join(' AND ') : '1=1', params };
}
