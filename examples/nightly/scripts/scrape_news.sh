#!/bin/sh
# The news scraper: its upstream is down tonight, on every attempt. The task is not
# critical, so the run goes on and reports it.
echo "news: <news.internal> answered 503 Service Unavailable & closed the connection" \
  "(attempt ${FORKLIFT_ATTEMPT:-1})" >&2
exit 75
