export { SqlStore, DEFAULT_CHANNEL, RESULT_DEFAULT_LIMIT, RESULT_MAX_LIMIT } from "./store.js";
export { sqliteDialect, mysqlDialect, postgresDialect, type SqlDialect, type ColumnTypes } from "./dialect.js";
export { migrateToLatest, storeMigrations } from "./migrations/index.js";
export type { Database } from "./schema.js";
