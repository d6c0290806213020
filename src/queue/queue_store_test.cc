// The queue protocol against a real PostgreSQL: claims, fencing, leases on the server's
// clock, the reaper's splits and dead letters, and run partitions.
#include "queue/queue_store.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "support/pg_server.h"

namespace forklift::queue {
namespace {

using ::forklift::testing::SharedPgServer;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class QueueStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = SharedPgServer();
    ASSERT_NE(server_, nullptr);
    // Each test its own queue schema: tests share one server.
    schema_ = std::string("q_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : schema_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ASSERT_TRUE(server_->Sql("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE"));
  }

  std::unique_ptr<QueueStore> Open() {
    auto dsn = sinks::ParsePgDsn(server_->dsn());
    EXPECT_TRUE(dsn);
    auto store = QueueStore::Open(*dsn, schema_);
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }

  std::string Sql(const std::string& sql) {
    auto r = server_->Sql(sql);
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? *r : "";
  }

  static std::vector<QueueItem> Items(int n, const std::string& prefix = "k") {
    std::vector<QueueItem> items;
    for (int i = 0; i < n; ++i) {
      items.push_back({.key = prefix + std::to_string(i),
                       .attempt = 1,
                       .payload = std::string("pay\0load", 8) + std::to_string(i)});
    }
    return items;
  }

  testing::PgServer* server_ = nullptr;
  std::string schema_;
};

TEST_F(QueueStoreTest, SchemaIsVersionedAndOpeningAgainChangesNothing) {
  auto a = Open();
  ASSERT_NE(a, nullptr);
  auto b = Open();
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(Sql("SELECT version FROM " + schema_ + ".queue_meta"), "1");
  Sql("UPDATE " + schema_ + ".queue_meta SET version = 99");
  auto dsn = sinks::ParsePgDsn(server_->dsn());
  auto c = QueueStore::Open(*dsn, schema_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(c.error().message, HasSubstr("upgrade forklift"));
}

TEST_F(QueueStoreTest, EnqueueClaimRecordAndFinish) {
  auto coord = Open();
  auto worker = Open();
  auto run = coord->OpenRun({.name = "map-1", .kind = "map"}, false);
  ASSERT_TRUE(run) << run.error().ToString();
  auto ids = coord->Enqueue(*run, Items(3));
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->size(), 3u);
  ASSERT_TRUE(worker->RegisterWorker("w1", "host", 1, 4));
  auto leases = worker->Claim("w1", 10, 10s);
  ASSERT_TRUE(leases) << leases.error().ToString();
  ASSERT_EQ(leases->size(), 1u);
  const Lease& l = (*leases)[0];
  ASSERT_EQ(l.items.size(), 3u);
  EXPECT_EQ(l.items[1].payload, std::string("pay\0load", 8) + "1");  // bytes round-trip
  // Nothing more to claim while it is leased.
  EXPECT_TRUE(worker->Claim("w1", 10, 10s)->empty());
  auto ok = worker->RecordOutcomes(l, {{.item_id = l.items[0].id, .result = "r0"}});
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_TRUE(*ok);
  auto got = coord->Outcomes(*run, *ids);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].result, "r0");
  // A second outcome for the same item keeps the first.
  ASSERT_TRUE(worker->RecordOutcomes(l, {{.item_id = l.items[0].id, .result = "again"}}));
  EXPECT_EQ(coord->Outcomes(*run, *ids)->at(0).result, "r0");
  EXPECT_TRUE(*worker->FinishSlice(l));
  EXPECT_FALSE(*worker->FinishSlice(l));  // the token is spent
}

TEST_F(QueueStoreTest, EnqueueAgainAfterAdoptingFindsTheSameItems) {
  auto coord = Open();
  auto run = coord->OpenRun({.name = "map-2", .kind = "map"}, false);
  auto first = coord->Enqueue(*run, Items(4));
  ASSERT_TRUE(first);
  coord.reset();  // the coordinator dies: its advisory lock goes with its session
  auto again = Open();
  auto adopted = again->OpenRun({.name = "map-2", .kind = "map"}, true);
  ASSERT_TRUE(adopted) << adopted.error().ToString();
  EXPECT_EQ(*adopted, *run);
  auto second = again->Enqueue(*adopted, Items(4));
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(Sql("SELECT count(*) FROM " + schema_ + ".items"), "4");
  EXPECT_EQ(Sql("SELECT count(*) FROM " + schema_ + ".slices"), "1");
}

TEST_F(QueueStoreTest, ASecondCoordinatorOfARunIsRefused) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a->OpenRun({.name = "map-3", .kind = "map"}, false));
  auto second = b->OpenRun({.name = "map-3", .kind = "map"}, true);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(second.error().message, HasSubstr("another coordinator"));
}

TEST_F(QueueStoreTest, ConcurrentClaimsNeverShareASlice) {
  auto coord = Open();
  auto run = coord->OpenRun({.name = "map-4", .kind = "map"}, false);
  for (int s = 0; s < 40; ++s) ASSERT_TRUE(coord->Enqueue(*run, Items(2, fmt::format("s{}-", s))));
  std::mutex mu;
  std::multiset<int64_t> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto w = Open();
      for (;;) {
        auto got = w->Claim(fmt::format("w{}", t), 3, 10s);
        ASSERT_TRUE(got) << got.error().ToString();
        if (got->empty()) return;
        std::lock_guard lock(mu);
        for (const Lease& l : *got) seen.insert(l.slice_id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), 40u);
  std::set<int64_t> distinct(seen.begin(), seen.end());
  EXPECT_EQ(distinct.size(), 40u);
}

TEST_F(QueueStoreTest, ALostLeaseIsFencedAndReclaimedOnTheServersClock) {
  auto coord = Open();
  auto w1 = Open();
  auto w2 = Open();
  auto run = coord->OpenRun({.name = "map-5", .kind = "map"}, false);
  ASSERT_TRUE(coord->Enqueue(*run, Items(1)));
  auto first = w1->Claim("w1", 1, 10s);
  ASSERT_EQ(first->size(), 1u);
  // Not expired: the reaper leaves it.
  EXPECT_EQ(coord->Reap()->expired, 0);
  // Expire it on the server's clock (the hosts' clocks play no part).
  Sql("UPDATE " + schema_ + ".slices SET lease_until = clock_timestamp() - interval '1 s'");
  // Expired but not yet reaped: the old holder can no longer write or renew.
  Lease old = (*first)[0];
  EXPECT_FALSE(*w1->RecordOutcomes(old, {{.item_id = old.items[0].id, .result = "late"}}));
  EXPECT_TRUE(w1->Renew("w1", {old}, 10s)->empty());
  auto reaped = coord->Reap();
  ASSERT_TRUE(reaped) << reaped.error().ToString();
  EXPECT_EQ(reaped->expired, 1);
  auto second = w2->Claim("w2", 1, 10s);
  ASSERT_EQ(second->size(), 1u);
  Lease fresh = (*second)[0];
  EXPECT_NE(fresh.token, old.token);
  // The first holder's late write changes nothing; the new holder's counts.
  EXPECT_FALSE(*w1->RecordOutcomes(old, {{.item_id = old.items[0].id, .result = "late"}}));
  EXPECT_FALSE(*w1->FinishSlice(old));
  EXPECT_TRUE(*w2->RecordOutcomes(fresh, {{.item_id = fresh.items[0].id, .result = "mine"}}));
  auto got = coord->Outcomes(*run, {fresh.items[0].id});
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].result, "mine");
  EXPECT_EQ(Sql("SELECT losses FROM " + schema_ + ".slices WHERE state = 'leased'"), "1");
}

TEST_F(QueueStoreTest, RenewExtendsOnlyWhatIsStillHeld) {
  auto coord = Open();
  auto w = Open();
  auto run = coord->OpenRun({.name = "map-6", .kind = "map"}, false);
  ASSERT_TRUE(w->RegisterWorker("w1", "h", 1, 1));
  ASSERT_TRUE(coord->Enqueue(*run, Items(1, "a")));
  ASSERT_TRUE(coord->Enqueue(*run, Items(1, "b")));
  auto held = w->Claim("w1", 2, 2s);
  ASSERT_EQ(held->size(), 2u);
  std::string before = Sql("SELECT max(lease_until) FROM " + schema_ + ".slices");
  auto renewed = w->Renew("w1", *held, 60s);
  ASSERT_TRUE(renewed) << renewed.error().ToString();
  EXPECT_EQ(renewed->size(), 2u);
  EXPECT_EQ(Sql("SELECT count(*) FROM " + schema_ +
                ".slices WHERE lease_until > clock_timestamp() + interval '50 s'"),
            "2");
  EXPECT_NE(before, Sql("SELECT max(lease_until) FROM " + schema_ + ".slices"));
  EXPECT_EQ(*coord->LiveWorkers(10s), 1);
  // A cancelled run's leases are not renewed: the worker learns to stop its items.
  ASSERT_TRUE(coord->CancelRun(*run));
  EXPECT_TRUE(w->Renew("w1", *held, 60s)->empty());
  ASSERT_TRUE(w->UnregisterWorker("w1"));
  EXPECT_EQ(*coord->LiveWorkers(10s), 0);
}

TEST_F(QueueStoreTest, LostSlicesSplitDownToTheItemAndPoisonIsDeadLettered) {
  auto coord = Open();
  auto w = Open();
  auto run = coord->OpenRun({.name = "map-7", .kind = "map", .max_losses = 2}, false);
  auto ids = coord->Enqueue(*run, Items(3));
  auto expire = [&] {
    Sql("UPDATE " + schema_ +
        ".slices SET lease_until = clock_timestamp() - interval '1 s' "
        "WHERE state = 'leased'");
  };
  auto l = w->Claim("w1", 1, 10s);
  ASSERT_EQ(l->size(), 1u);
  // One item finished before the worker died: it keeps its outcome and is not rerun.
  ASSERT_TRUE(*w->RecordOutcomes((*l)[0], {{.item_id = (*ids)[0], .result = "ok"}}));
  expire();
  auto r = coord->Reap();
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->split, 1);
  // Two one-item slices now, each with the loss so far.
  auto singles = w->Claim("w1", 10, 10s);
  ASSERT_EQ(singles->size(), 2u);
  for (const Lease& s : *singles) EXPECT_EQ(s.items.size(), 1u);
  // The first is fine; the second kills its worker again.
  Lease good = (*singles)[0], poison = (*singles)[1];
  ASSERT_TRUE(*w->RecordOutcomes(good, {{.item_id = good.items[0].id, .result = "ok"}}));
  ASSERT_TRUE(*w->FinishSlice(good));
  expire();
  r = coord->Reap();
  EXPECT_EQ(r->dead_lettered, 1);
  auto got = coord->Outcomes(*run, *ids);
  ASSERT_EQ(got->size(), 3u);
  int dead = 0;
  for (const auto& o : *got) {
    if (o.status == OutcomeStatus::kDead) {
      ++dead;
      EXPECT_EQ(o.item_id, poison.items[0].id);
      EXPECT_THAT(o.result, HasSubstr("lost its worker 2 times (last: w1)"));
    }
  }
  EXPECT_EQ(dead, 1);
  EXPECT_TRUE(w->Claim("w1", 10, 10s)->empty());
}

TEST_F(QueueStoreTest, ReleaseGivesBackWithoutALoss) {
  auto coord = Open();
  auto w = Open();
  auto run = coord->OpenRun({.name = "map-8", .kind = "map"}, false);
  ASSERT_TRUE(coord->Enqueue(*run, Items(2)));
  auto held = w->Claim("w1", 1, 10s);
  ASSERT_TRUE(w->Release(*held));
  EXPECT_EQ(Sql("SELECT state || ' ' || losses FROM " + schema_ + ".slices"), "ready 0");
  EXPECT_EQ(w->Claim("w2", 1, 10s)->at(0).items.size(), 2u);
}

TEST_F(QueueStoreTest, DroppingARunRemovesItsPartitionsNotRows) {
  auto coord = Open();
  auto run = coord->OpenRun({.name = "map-9", .kind = "map"}, false);
  ASSERT_TRUE(coord->Enqueue(*run, Items(5)));
  std::string count_tables = "SELECT count(*) FROM pg_tables WHERE schemaname = '" + schema_ +
                             "' AND tablename LIKE '%\\_" + std::to_string(*run) + "'";
  EXPECT_EQ(Sql(count_tables), "3");
  ASSERT_TRUE(coord->DropRun(*run));
  EXPECT_EQ(Sql(count_tables), "0");
  EXPECT_EQ(Sql("SELECT count(*) FROM " + schema_ + ".runs"), "0");
  // A fresh start of a run of the same name drops the old one first.
  auto a = coord->OpenRun({.name = "map-10", .kind = "map"}, false);
  ASSERT_TRUE(coord->Enqueue(*a, Items(2)));
  auto b = coord->OpenRun({.name = "map-10", .kind = "map"}, false);
  ASSERT_TRUE(b);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(Sql("SELECT count(*) FROM " + schema_ + ".items"), "0");
}

TEST_F(QueueStoreTest, ADropBlockedByALongTransactionDoesNotBlockClaims) {
  auto coord = Open();
  auto w = Open();
  auto run = coord->OpenRun({.name = "map-11", .kind = "map"}, false);
  auto other = coord->OpenRun({.name = "map-12", .kind = "map"}, false);
  ASSERT_TRUE(coord->Enqueue(*other, Items(1)));
  // A long-open transaction elsewhere that read the queue.
  auto dsn = sinks::ParsePgDsn(server_->dsn());
  auto reader = sinks::PgConnection::Connect(*dsn);
  ASSERT_TRUE(reader);
  ASSERT_TRUE((*reader)->Exec("BEGIN; SELECT count(*) FROM " + schema_ + ".slices"));
  ASSERT_TRUE(coord->DropRun(*run));  // gives up quickly, marks it finished
  EXPECT_EQ(Sql("SELECT state FROM " + schema_ + ".runs WHERE id = " + std::to_string(*run)),
            "finished");
  auto claimed = w->Claim("w1", 1, 10s);
  ASSERT_TRUE(claimed) << claimed.error().ToString();
  EXPECT_EQ(claimed->size(), 1u);
  ASSERT_TRUE((*reader)->Exec("COMMIT"));
  ASSERT_TRUE(coord->Reap());  // drops it now
  EXPECT_EQ(Sql("SELECT count(*) FROM " + schema_ + ".runs WHERE id = " + std::to_string(*run)),
            "0");
}

}  // namespace
}  // namespace forklift::queue
