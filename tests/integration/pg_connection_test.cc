// Connecting to PostgreSQL: conninfo from URLs, clear connection errors without secrets.
#include "drivers/postgres/pg_connection.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "server_env.h"

namespace safemig {
namespace {

TEST(PostgresConninfo, CarriesEveryPartAndNamesTheApplication) {
  DatabaseUrl url = ParseDatabaseUrl("postgres://app:p%27w@db.internal:6543/shop?sslmode=require");
  std::string conninfo = PostgresConninfo(url);
  EXPECT_NE(conninfo.find("host='db.internal'"), std::string::npos) << conninfo;
  EXPECT_NE(conninfo.find("port='6543'"), std::string::npos);
  EXPECT_NE(conninfo.find("dbname='shop'"), std::string::npos);
  EXPECT_NE(conninfo.find("password='p\\'w'"), std::string::npos);
  EXPECT_NE(conninfo.find("sslmode='require'"), std::string::npos);
  EXPECT_NE(conninfo.find("application_name='safemig'"), std::string::npos);
  EXPECT_NE(PostgresConninfo(url, "other").find("dbname='other'"), std::string::npos);
}

TEST(PostgresConnect, WrongPasswordIsAConnectionErrorWithoutThePassword) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  DatabaseUrl wrong = server;
  wrong.password = "not-the-password-xyz";
  try {
    ConnectLibpq(wrong);
    FAIL() << "expected a connection error";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kConnection);
    EXPECT_EQ(std::string(e.what()).find("not-the-password-xyz"), std::string::npos) << e.what();
  }
}

TEST(PostgresConnect, ScratchDatabasesComeAndGo) {
  SAFEMIG_REQUIRE_POSTGRES(server);
  std::string name;
  {
    testing::ScratchPostgresDatabase db(server);
    name = db.name();
    db.Exec("CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
  }
  PgConn admin = ConnectLibpq(server);
  PgResult result = ExecLibpq(
      admin.get(), "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'");
  EXPECT_STREQ(PQgetvalue(result.get(), 0, 0), "0");
}

}  // namespace
}  // namespace safemig
