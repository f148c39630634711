#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/migration.h"

namespace safemig {
namespace {

// Checks both argument orders, so every case also tests antisymmetry.
void ExpectLess(const std::string& a, const std::string& b) {
  EXPECT_EQ(CompareVersions(a, b), -1) << a << " < " << b;
  EXPECT_EQ(CompareVersions(b, a), 1) << b << " > " << a;
}

void ExpectSame(const std::string& a, const std::string& b) {
  EXPECT_EQ(CompareVersions(a, b), 0) << a << " == " << b;
  EXPECT_EQ(CompareVersions(b, a), 0) << b << " == " << a;
}

TEST(CompareVersions, OrdersNumbersNumerically) {
  ExpectLess("1", "2");
  ExpectLess("2", "10");
  ExpectLess("9", "10");
  ExpectLess("20240101120000", "20240102000000");
}

TEST(CompareVersions, LeadingZerosDoNotCount) {
  ExpectSame("001", "1");
  ExpectSame("0", "000");
  ExpectLess("009", "10");
}

TEST(CompareVersions, ComparesDottedPartsAsNumbers) {
  ExpectLess("1.9", "1.10");
  ExpectLess("1.2.3", "1.10");
  ExpectLess("2023.12.31", "2024.01.01");
  ExpectSame("1.1", "1_1");
}

TEST(CompareVersions, MissingTrailingPartsAreZero) {
  ExpectSame("1", "1.0");
  ExpectSame("1", "1.0.0");
  ExpectLess("1", "1.0.1");
}

TEST(CompareVersions, TreatsDashesAsSeparators) {
  ExpectLess("2024-01-02-120000", "2024-01-10-000000");
  ExpectLess("00000000000000", "2024-01-01-000000");
  ExpectSame("2024-01-01", "2024.1.1");
}

TEST(CompareVersions, HandlesVersionsBeyondSixtyFourBits) {
  ExpectLess("99999999999999999999", "100000000000000000000");
  ExpectLess("18446744073709551615", "18446744073709551616");
  ExpectSame("0000000000000000000000001", "1");
}

TEST(CompareVersions, PutsTextPartsAfterNumbers) {
  ExpectLess("1.9", "1.a");
  ExpectLess("1.a", "1.b");
  ExpectLess("1", "1.a");
  ExpectSame("1.rc", "1.rc");
}

TEST(CompareVersions, VersionLessSortsLikeTheTools) {
  std::vector<std::string> versions = {"10", "1.10", "2", "1.9", "1", "1.1"};
  std::sort(versions.begin(), versions.end(), VersionLess());
  EXPECT_EQ(versions, (std::vector<std::string>{"1", "1.1", "1.9", "1.10", "2", "10"}));
}

TEST(FormatName, NamesEveryFormat) {
  EXPECT_STREQ(FormatName(MigrationFormat::kFlatPair), "flat_pair");
  EXPECT_STREQ(FormatName(MigrationFormat::kFolderPair), "folder_pair");
  EXPECT_STREQ(FormatName(MigrationFormat::kDbmate), "dbmate");
  EXPECT_STREQ(FormatName(MigrationFormat::kGoose), "goose");
  EXPECT_STREQ(FormatName(MigrationFormat::kFlyway), "flyway");
}

bool HasDown(const std::string& down_sql) {
  Migration migration;
  migration.down_sql = down_sql;
  return migration.HasDown();
}

TEST(MigrationHasDown, FalseForWhitespaceAndComments) {
  EXPECT_FALSE(HasDown(""));
  EXPECT_FALSE(HasDown(" \n\t\r\n"));
  EXPECT_FALSE(HasDown("-- nothing to undo\n"));
  EXPECT_FALSE(HasDown("-- no trailing newline"));
  EXPECT_FALSE(HasDown("/* block\n comment */\n"));
  EXPECT_FALSE(HasDown("/* outer /* nested */ still comment */"));
  EXPECT_FALSE(HasDown("-- +goose StatementBegin\n-- +goose StatementEnd\n"));
  EXPECT_FALSE(HasDown(";\n"));
}

TEST(MigrationHasDown, TrueForSql) {
  EXPECT_TRUE(HasDown("DROP TABLE t;"));
  EXPECT_TRUE(HasDown("-- undo\nDROP TABLE t;\n"));
  EXPECT_TRUE(HasDown("/* undo */ DROP TABLE t;"));
}

}  // namespace
}  // namespace safemig
