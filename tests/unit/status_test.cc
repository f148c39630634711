// ComputeStatus: applied, pending and each kind of drift.
#include "core/status.h"

#include <gtest/gtest.h>

#include "core/sha256.h"

namespace safemig {
namespace {

Migration File(const std::string& version, const std::string& up = "CREATE TABLE t (id INT);") {
  Migration m;
  m.version = version;
  m.name = "m" + version;
  m.up_path = version + "_m" + version + ".up.sql";
  m.down_path = version + "_m" + version + ".down.sql";
  m.up_sql = up;
  m.down_sql = "DROP TABLE t;";
  m.checksum = Sha256Hex(up);
  m.down_checksum = Sha256Hex(m.down_sql);
  return m;
}

HistoryRow Applied(const Migration& m) {
  HistoryRow row;
  row.version = m.version;
  row.name = m.name;
  row.checksum = m.checksum;
  row.up_path = m.up_path;
  row.down_sql = m.down_sql;
  return row;
}

TEST(Status, EmptyDatabaseHasEverythingPending) {
  StatusReport report = ComputeStatus({File("1"), File("2")}, {});
  ASSERT_EQ(report.rows.size(), 2u);
  EXPECT_EQ(report.rows[0].state, MigrationState::kPending);
  EXPECT_EQ(report.pending, 2);
  EXPECT_EQ(report.current_version, "");
}

TEST(Status, AppliedAndPendingInVersionOrder) {
  Migration a = File("2"), b = File("10"), c = File("11");
  StatusReport report = ComputeStatus({a, b, c}, {Applied(b), Applied(a)});
  ASSERT_EQ(report.rows.size(), 3u);
  EXPECT_EQ(report.rows[0].version, "2");
  EXPECT_EQ(report.rows[1].version, "10");
  EXPECT_EQ(report.rows[1].state, MigrationState::kApplied);
  EXPECT_EQ(report.rows[2].state, MigrationState::kPending);
  EXPECT_EQ(report.current_version, "10");
  EXPECT_EQ(report.applied, 2);
  EXPECT_EQ(report.drifted, 0);
}

TEST(Status, EditedAppliedFileIsChangedDrift) {
  Migration a = File("1");
  HistoryRow row = Applied(a);
  Migration edited = File("1", "CREATE TABLE t (id INT, extra INT);");
  StatusReport report = ComputeStatus({edited}, {row});
  EXPECT_EQ(report.rows[0].state, MigrationState::kChanged);
  EXPECT_NE(report.rows[0].detail.find("edited after it was applied"), std::string::npos);
  EXPECT_EQ(report.drifted, 1);
}

TEST(Status, AppliedWithoutFileIsMissingDrift) {
  Migration a = File("1");
  StatusReport report = ComputeStatus({}, {Applied(a)});
  ASSERT_EQ(report.rows.size(), 1u);
  EXPECT_EQ(report.rows[0].state, MigrationState::kMissing);
  EXPECT_NE(report.rows[0].detail.find("no longer in the migrations directory"),
            std::string::npos);
}

TEST(Status, PendingOlderThanNewestAppliedIsOutOfOrder) {
  Migration a = File("1"), b = File("2"), c = File("3");
  StatusReport report = ComputeStatus({a, b, c}, {Applied(a), Applied(c)});
  EXPECT_EQ(report.rows[1].state, MigrationState::kOutOfOrder);
  EXPECT_EQ(report.pending, 1);
  EXPECT_EQ(report.drifted, 1);
}

TEST(Status, LeadingZerosMatchTheSameVersion) {
  Migration a = File("001");
  HistoryRow row = Applied(a);
  row.version = "1";
  StatusReport report = ComputeStatus({a}, {row});
  ASSERT_EQ(report.rows.size(), 1u);
  EXPECT_EQ(report.rows[0].state, MigrationState::kApplied);
}

}  // namespace
}  // namespace safemig
