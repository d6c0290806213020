-- Per-day market statistics, rebuilt from the candles every night (one transaction: a
-- reader sees the old table or the new one).
DROP TABLE IF EXISTS daily_stats;
CREATE TABLE daily_stats AS
  SELECT date, count(*) AS symbols, avg(close) AS avg_close, sum(volume) AS volume
  FROM candles GROUP BY date;
