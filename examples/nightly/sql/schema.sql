-- The market database's tables. Idempotent: every night runs it. The types read the same
-- in SQLite and PostgreSQL (FORKLIFT_PG): DOUBLE PRECISION is REAL in SQLite, BIGINT INTEGER.
CREATE TABLE IF NOT EXISTS candles (
  symbol TEXT NOT NULL, date TEXT NOT NULL,
  open DOUBLE PRECISION, high DOUBLE PRECISION, low DOUBLE PRECISION,
  close DOUBLE PRECISION CHECK (close >= 0), volume BIGINT,
  PRIMARY KEY (symbol, date));
CREATE TABLE IF NOT EXISTS macro (
  series TEXT NOT NULL, date TEXT NOT NULL, value DOUBLE PRECISION,
  PRIMARY KEY (series, date));
