-- The market database's tables. Idempotent: every night runs it.
CREATE TABLE IF NOT EXISTS candles (
  symbol TEXT NOT NULL, date TEXT NOT NULL,
  open REAL, high REAL, low REAL, close REAL CHECK (close >= 0), volume INTEGER,
  PRIMARY KEY (symbol, date));
CREATE TABLE IF NOT EXISTS macro (
  series TEXT NOT NULL, date TEXT NOT NULL, value REAL,
  PRIMARY KEY (series, date));
