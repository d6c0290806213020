#include "scan/indicators.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace forklift::scan {
namespace {

TEST(IndicatorsTest, SmaIsUndefinedUntilTheWindowIsFull) {
  std::vector<double> x = {1, 2, 3, 4, 5};
  auto sma = SimpleMovingAverage(x, 3);
  EXPECT_TRUE(std::isnan(sma[0]));
  EXPECT_TRUE(std::isnan(sma[1]));
  EXPECT_DOUBLE_EQ(sma[2], 2);
  EXPECT_DOUBLE_EQ(sma[4], 4);
}

TEST(IndicatorsTest, RsiFollowsTheSimpleMeanDefinition) {
  // Changes: +1 -1 +2 -1 (window 2): rows 2.. defined.
  std::vector<double> close = {10, 11, 10, 12, 11};
  auto rsi = RelativeStrengthIndex(close, 2);
  EXPECT_TRUE(std::isnan(rsi[0]));
  EXPECT_TRUE(std::isnan(rsi[1]));
  EXPECT_DOUBLE_EQ(rsi[2], 50);                           // U = 0.5, D = 0.5
  EXPECT_DOUBLE_EQ(rsi[3], 100 - 100 / (1 + 1.0 / 0.5));  // U = 1, D = 0.5
  EXPECT_DOUBLE_EQ(rsi[4], 100 - 100 / (1 + 1.0 / 0.5));
}

TEST(IndicatorsTest, RsiEdgeCases) {
  std::vector<double> rising = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(RelativeStrengthIndex(rising, 2)[3], 100) << "no losses: RSI 100";
  std::vector<double> flat = {5, 5, 5, 5};
  EXPECT_TRUE(std::isnan(RelativeStrengthIndex(flat, 2)[3])) << "no change at all: undefined";
  std::vector<double> falling = {4, 3, 2, 1};
  EXPECT_DOUBLE_EQ(RelativeStrengthIndex(falling, 2)[3], 0);
}

TEST(IndicatorsTest, CrossoverNeedsACrossAndLowRsi) {
  // 60 falling rows keep SMA20 under SMA50, then a sharp rise makes SMA20 cross above.
  // Rising rows push RSI to 100, so with only rises there is no signal...
  std::vector<double> close;
  for (int i = 0; i < 60; ++i) close.push_back(100 - i * 0.5);
  std::vector<double> rising = close;
  for (int i = 0; i < 40; ++i) rising.push_back(rising.back() + 3);
  EXPECT_TRUE(CrossoverSignals(rising).empty());
  // ...but a rise of big steps interleaved with small dips keeps RSI below 60 only if the
  // dips dominate the 14-row window; make the cross happen on a day after heavy losses.
  std::vector<double> mixed = close;
  for (int i = 0; i < 12; ++i) mixed.push_back(mixed.back() + 8);    // lift SMA20 fast
  for (int i = 0; i < 14; ++i) mixed.push_back(mixed.back() - 1.5);  // losses dominate RSI
  auto fast = SimpleMovingAverage(mixed, 20);
  auto slow = SimpleMovingAverage(mixed, 50);
  auto rsi = RelativeStrengthIndex(mixed, 14);
  auto hits = CrossoverSignals(mixed);
  // Whatever the exact day, every hit satisfies the rule, and the rule's days are all hits.
  std::vector<size_t> expected;
  for (size_t i = 1; i < mixed.size(); ++i) {
    if (fast[i] > slow[i] && fast[i - 1] <= slow[i - 1] && rsi[i] < 60) expected.push_back(i);
  }
  EXPECT_EQ(hits, expected);
  EXPECT_TRUE(CrossoverSignals(std::vector<double>(49, 1.0)).empty()) << "too short for SMA50";
}

TEST(IndicatorsTest, HandMadeCrossWithLowRsi) {
  // Checked against scan_ppe.py's pandas code: 30 rows at 92, 20 rows alternating 94/89
  // (SMA20 91.5 <= SMA50 91.8), then 106 lifts SMA20 to 92.1 over SMA50 92.08 while the
  // alternating losses keep RSI14 at 57.3.
  std::vector<double> close(30, 92.0);
  for (int i = 0; i < 20; ++i) close.push_back(i % 2 == 0 ? 94.0 : 89.0);
  close.push_back(106.0);
  close.push_back(100.0);
  auto hits = CrossoverSignals(close);
  ASSERT_EQ(hits, std::vector<size_t>({50}));
  EXPECT_NEAR(RelativeStrengthIndex(close, 14)[50], 57.31707317073171, 1e-9);
}

TEST(IndicatorsTest, OnePassSignalsEqualTheRuleOverTheSeparateIndicators) {
  // CrossoverSignals fuses the four rolling means into one pass; on random walks (the
  // scan's kind of data, plus flat stretches for RSI's edge cases) its hits must be
  // exactly the rule applied to SimpleMovingAverage and RelativeStrengthIndex.
  std::mt19937_64 rng(42);
  std::normal_distribution<double> step(0.0, 0.02);
  size_t total_hits = 0;
  for (int series = 0; series < 200; ++series) {
    std::vector<double> close;
    double p = 50 + series;
    for (int i = 0; i < 504; ++i) {
      if (series % 10 != 0 || i % 40 >= 20) p *= 1 + step(rng);  // some series go flat
      close.push_back(p);
    }
    auto fast = SimpleMovingAverage(close, 20);
    auto slow = SimpleMovingAverage(close, 50);
    auto rsi = RelativeStrengthIndex(close, 14);
    std::vector<size_t> expected;
    for (size_t i = 1; i < close.size(); ++i) {
      if (fast[i] > slow[i] && fast[i - 1] <= slow[i - 1] && rsi[i] < 60) expected.push_back(i);
    }
    ASSERT_EQ(CrossoverSignals(close), expected) << "series " << series;
    total_hits += expected.size();
  }
  EXPECT_GT(total_hits, 100u) << "random walks of 504 rows should cross often";
}

}  // namespace
}  // namespace forklift::scan
