#include "config/url.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace safemig {
namespace {

// Returns the message of the Error that ParseDatabaseUrl throws, failing the test if it
// does not throw one.
std::string ParseError(const std::string& url) {
  try {
    ParseDatabaseUrl(url);
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), Category::kConfig) << url;
    return e.what();
  }
  ADD_FAILURE() << "no error for " << url;
  return {};
}

TEST(EngineName, NamesEachEngine) {
  EXPECT_STREQ(EngineName(Engine::kPostgres), "postgres");
  EXPECT_STREQ(EngineName(Engine::kMySql), "mysql");
  EXPECT_STREQ(EngineName(Engine::kSqlite), "sqlite");
}

TEST(ParseDatabaseUrl, ParsesFullPostgresUrl) {
  DatabaseUrl url =
      ParseDatabaseUrl("postgres://app:s3cret@db.example.com:6543/shop?sslmode=require");
  EXPECT_EQ(url.engine, Engine::kPostgres);
  EXPECT_EQ(url.scheme, "postgres");
  EXPECT_EQ(url.user, "app");
  EXPECT_EQ(url.password, "s3cret");
  EXPECT_EQ(url.host, "db.example.com");
  EXPECT_EQ(url.port, 6543);
  EXPECT_EQ(url.database, "shop");
  EXPECT_EQ(url.params.at("sslmode"), "require");
  EXPECT_TRUE(url.path.empty());
}

TEST(ParseDatabaseUrl, AcceptsPostgresqlScheme) {
  DatabaseUrl url = ParseDatabaseUrl("postgresql://localhost/app");
  EXPECT_EQ(url.engine, Engine::kPostgres);
  EXPECT_EQ(url.scheme, "postgresql");
  EXPECT_EQ(url.host, "localhost");
  EXPECT_FALSE(url.port.has_value());
  EXPECT_TRUE(url.user.empty());
  EXPECT_FALSE(url.password.has_value());
}

TEST(ParseDatabaseUrl, SchemeIsCaseInsensitive) {
  EXPECT_EQ(ParseDatabaseUrl("POSTGRES://h/db").engine, Engine::kPostgres);
  EXPECT_EQ(ParseDatabaseUrl("MySQL://h/db").engine, Engine::kMySql);
  EXPECT_EQ(ParseDatabaseUrl("SQLite:app.db").engine, Engine::kSqlite);
  EXPECT_EQ(ParseDatabaseUrl("MariaDB://h/db").scheme, "mariadb");
}

TEST(ParseDatabaseUrl, ParsesMysqlAndMariadb) {
  DatabaseUrl mysql = ParseDatabaseUrl("mysql://root:pw@127.0.0.1:3306/app?ssl-mode=REQUIRED");
  EXPECT_EQ(mysql.engine, Engine::kMySql);
  EXPECT_EQ(mysql.host, "127.0.0.1");
  EXPECT_EQ(mysql.port, 3306);
  EXPECT_EQ(mysql.database, "app");
  EXPECT_EQ(mysql.params.at("ssl-mode"), "REQUIRED");

  DatabaseUrl maria = ParseDatabaseUrl("mariadb://u@maria/inventory");
  EXPECT_EQ(maria.engine, Engine::kMySql);
  EXPECT_EQ(maria.scheme, "mariadb");
  EXPECT_EQ(maria.user, "u");
  EXPECT_FALSE(maria.password.has_value());
}

TEST(ParseDatabaseUrl, ParsesBracketedIpv6Hosts) {
  DatabaseUrl with_port = ParseDatabaseUrl("postgres://u:p@[::1]:5433/db");
  EXPECT_EQ(with_port.host, "::1");
  EXPECT_EQ(with_port.port, 5433);
  DatabaseUrl without_port = ParseDatabaseUrl("mysql://[2001:db8::7]/db");
  EXPECT_EQ(without_port.host, "2001:db8::7");
  EXPECT_FALSE(without_port.port.has_value());
}

TEST(ParseDatabaseUrl, RejectsMalformedIpv6Hosts) {
  EXPECT_NE(ParseError("postgres://[::1/db").find("IPv6"), std::string::npos);
  EXPECT_NE(ParseError("postgres://::1/db").find("brackets"), std::string::npos);
  ParseError("postgres://[zz::1]/db");
  ParseError("postgres://[::1]x/db");
  ParseError("postgres://[]/db");
}

TEST(ParseDatabaseUrl, PercentDecodesUserPasswordDatabaseAndParams) {
  DatabaseUrl url = ParseDatabaseUrl(
      "postgres://me%40corp:p%40ss%3Aw%2Frd%25@h/my%20db?application_name=safe%26mig&x=%2Fa");
  EXPECT_EQ(url.user, "me@corp");
  EXPECT_EQ(url.password, "p@ss:w/rd%");
  EXPECT_EQ(url.database, "my db");
  EXPECT_EQ(url.params.at("application_name"), "safe&mig");
  EXPECT_EQ(url.params.at("x"), "/a");
}

TEST(ParseDatabaseUrl, KeepsPlusSignsLiteral) {
  // Generated passwords are often base64; '+' must not become a space.
  DatabaseUrl url = ParseDatabaseUrl("postgres://u:a+b@h/db?password=c+d");
  EXPECT_EQ(url.password, "a+b");
  EXPECT_EQ(url.params.at("password"), "c+d");
}

TEST(ParseDatabaseUrl, AcceptsRawColonAndAtInPassword) {
  DatabaseUrl colon = ParseDatabaseUrl("postgres://u:pa:ss@h/db");
  EXPECT_EQ(colon.user, "u");
  EXPECT_EQ(colon.password, "pa:ss");
  DatabaseUrl at = ParseDatabaseUrl("postgres://u:p@ss@h:5432/db");
  EXPECT_EQ(at.password, "p@ss");
  EXPECT_EQ(at.host, "h");
  EXPECT_EQ(at.port, 5432);
}

TEST(ParseDatabaseUrl, DistinguishesEmptyPasswordFromNone) {
  EXPECT_EQ(ParseDatabaseUrl("postgres://u:@h/db").password, "");
  EXPECT_FALSE(ParseDatabaseUrl("postgres://u@h/db").password.has_value());
}

TEST(ParseDatabaseUrl, AllowsEmptyHostForUnixSockets) {
  DatabaseUrl no_host = ParseDatabaseUrl("postgres:///app");
  EXPECT_TRUE(no_host.host.empty());
  EXPECT_EQ(no_host.database, "app");
  EXPECT_TRUE(ParseDatabaseUrl("mysql://root@/app").host.empty());
  DatabaseUrl socket = ParseDatabaseUrl("postgres://%2Fvar%2Frun%2Fpostgresql/app");
  EXPECT_EQ(socket.host, "/var/run/postgresql");
}

TEST(ParseDatabaseUrl, IgnoresEmptyQuerySegmentsAndKeepsValuelessParams) {
  DatabaseUrl url = ParseDatabaseUrl("postgres://h/db?&a=1&&b&");
  EXPECT_EQ(url.params.size(), 2u);
  EXPECT_EQ(url.params.at("a"), "1");
  EXPECT_EQ(url.params.at("b"), "");
}

TEST(ParseDatabaseUrl, AcceptsAtSignInQueryValue) {
  DatabaseUrl url = ParseDatabaseUrl("postgres://h/db?application_name=me@laptop&x=a@b.c");
  EXPECT_EQ(url.params.at("application_name"), "me@laptop");
  EXPECT_EQ(url.params.at("x"), "a@b.c");
}

TEST(ParseDatabaseUrl, AcceptsPortBounds) {
  EXPECT_EQ(ParseDatabaseUrl("postgres://h:1/db").port, 1);
  EXPECT_EQ(ParseDatabaseUrl("postgres://h:65535/db").port, 65535);
}

TEST(ParseDatabaseUrl, RejectsBadPorts) {
  for (const char* url : {"postgres://h:0/db", "postgres://h:65536/db", "postgres://h:99999999/db",
                          "postgres://h:54a/db", "postgres://h:/db", "postgres://h:-1/db"}) {
    EXPECT_NE(ParseError(url).find("port"), std::string::npos) << url;
  }
}

TEST(ParseDatabaseUrl, RequiresDatabaseNameWithRedactedUrl) {
  std::string message = ParseError("postgres://app:hunter2@db:5432?sslmode=require");
  EXPECT_EQ(message,
            "postgres URL has no database name: postgres://app:***@db:5432?sslmode=require");
  EXPECT_NE(ParseError("postgresql://db/").find("postgres URL has no database name"),
            std::string::npos);
  EXPECT_NE(ParseError("mysql://root:hunter2@db").find("mysql URL has no database name"),
            std::string::npos);
  EXPECT_EQ(ParseError("mysql://root:hunter2@db").find("hunter2"), std::string::npos);
}

TEST(ParseDatabaseUrl, RejectsUnknownSchemeListingAcceptedOnes) {
  std::string message = ParseError("mongodb://u:p@h/db");
  EXPECT_NE(message.find("\"mongodb\""), std::string::npos);
  EXPECT_NE(message.find("postgres, postgresql, mysql, mariadb, sqlite"), std::string::npos);
}

TEST(ParseDatabaseUrl, RejectsTextWithoutScheme) {
  EXPECT_NE(ParseError("").find("empty"), std::string::npos);
  std::string conninfo = ParseError("host=db password=hunter2 dbname=app");
  EXPECT_NE(conninfo.find("key=value connection string"), std::string::npos);
  EXPECT_EQ(conninfo.find("hunter2"), std::string::npos);
  ParseError("://h/db");
  ParseError("1pg://h/db");
}

TEST(ParseDatabaseUrl, RequiresDoubleSlashForServerEngines) {
  std::string message = ParseError("postgres:app:hunter2@h/db");
  EXPECT_NE(message.find("must start with postgres://"), std::string::npos);
  EXPECT_EQ(message.find("hunter2"), std::string::npos);
}

TEST(ParseDatabaseUrl, RejectsMalformedPercentEscapesWithoutQuotingThem) {
  std::string message = ParseError("postgres://u:abc%zzdef@h/db");
  EXPECT_NE(message.find("percent-escape in the password"), std::string::npos);
  EXPECT_EQ(message.find("abc"), std::string::npos);
  EXPECT_NE(ParseError("postgres://h/db%4").find("database name"), std::string::npos);
  EXPECT_NE(ParseError("postgres://h/db?a=%G1").find("parameter a"), std::string::npos);
}

TEST(ParseDatabaseUrl, ExplainsRawSlashQuestionOrHashInPassword) {
  for (const char* url :
       {"postgres://u:pa/Qx9@h/db", "postgres://u:pa?Qx9@h/db", "postgres://u:pa#Qx9@h/db",
        "mysql://u:12/Qx9@h/db", "mysql://u:12?Qx9@h/db", "mysql://u:12?Qx9@h/db?a=b",
        "mysql://u:12/d?x=Qx9@h:3306/db"}) {
    std::string message = ParseError(url);
    EXPECT_NE(message.find("raw '/', '?' or '#'"), std::string::npos) << url;
    EXPECT_EQ(message.find("Qx9"), std::string::npos) << message;
  }
}

TEST(ParseDatabaseUrl, RejectsNestedPathsFragmentsDuplicatesAndSeveralHosts) {
  EXPECT_NE(ParseError("postgres://h/a/b").find("single database name"), std::string::npos);
  EXPECT_NE(ParseError("postgres://h/db#x").find("fragment"), std::string::npos);
  EXPECT_NE(ParseError("postgres://h/db?sslmode=a&sslmode=b").find("sslmode twice"),
            std::string::npos);
  EXPECT_NE(ParseError("postgres://h/db?=x").find("without a name"), std::string::npos);
  EXPECT_NE(ParseError("postgres://h1,h2/db").find("several hosts"), std::string::npos);
  EXPECT_NE(ParseError("postgres://h1:5432,h2:5433/db").find("several hosts"), std::string::npos);
}

TEST(ParseDatabaseUrl, ParsesSqliteForms) {
  EXPECT_EQ(ParseDatabaseUrl("sqlite:app.db").path, "app.db");
  EXPECT_EQ(ParseDatabaseUrl("sqlite:data/app.db").path, "data/app.db");
  EXPECT_EQ(ParseDatabaseUrl("sqlite://data/app.db").path, "data/app.db");
  EXPECT_EQ(ParseDatabaseUrl("sqlite:///abs/path.db").path, "/abs/path.db");
  EXPECT_EQ(ParseDatabaseUrl("sqlite:/abs/path.db").path, "/abs/path.db");
  EXPECT_EQ(ParseDatabaseUrl("sqlite::memory:").path, ":memory:");
  EXPECT_EQ(ParseDatabaseUrl("sqlite:my%20file.db").path, "my file.db");
  DatabaseUrl url = ParseDatabaseUrl("sqlite:app.db?mode=ro&cache=shared");
  EXPECT_EQ(url.engine, Engine::kSqlite);
  EXPECT_EQ(url.path, "app.db");
  EXPECT_EQ(url.params.at("mode"), "ro");
  EXPECT_EQ(url.params.at("cache"), "shared");
  EXPECT_TRUE(url.database.empty());
}

TEST(ParseDatabaseUrl, RejectsSqliteWithoutPath) {
  for (const char* url : {"sqlite:", "sqlite://", "sqlite:?mode=ro"}) {
    EXPECT_NE(ParseError(url).find("sqlite URL has no file path"), std::string::npos) << url;
  }
}

TEST(ParseDatabaseUrl, NeverQuotesThePasswordInErrors) {
  const std::vector<std::string> bad = {
      "postgres://u:S3cretPW@h:0/db",
      "postgres://u:S3cretPW@h",
      "postgres://u:S3cretPW@h/a/b",
      "postgres://u:S3cretPW@h/db#f",
      "postgres://u:S3cretPW@h1,h2/db",
      "postgres:u:S3cretPW@h/db",
      "postgres://u:S3cretPW/x@h/db",
      "postgres://u:S3cretPW%zz@h/db",
      "mysql://u:S3cretPW@[::1/db",
      "mysql://u:S3cretPW@h/db?a=1&a=2",
      "nosuch://u:S3cretPW@h/db",
      "postgres://u:S3cretPW@h/db?password=S3cretPW&x",
      "postgres://u:S3cretPW@h/db?password=S3cretPW&password=S3cretPW",
      "u:S3cretPW@h/db",
      "my db:S3cretPW@h/db"};
  for (const std::string& url : bad) {
    std::string message;
    try {
      ParseDatabaseUrl(url);
      if (url.find("&x") != std::string::npos) continue;  // valid: nothing to check
      ADD_FAILURE() << "no error for a bad URL";
    } catch (const Error& e) {
      message = std::string(e.what()) + " " + e.hint();
    }
    EXPECT_EQ(message.find("S3cretPW"), std::string::npos) << message;
  }
}

TEST(DatabaseUrlRedacted, MasksPasswordAndKeepsUser) {
  DatabaseUrl url = ParseDatabaseUrl("postgres://app:hunter2@db:5432/shop?sslmode=require");
  EXPECT_EQ(url.Redacted(), "postgres://app:***@db:5432/shop?sslmode=require");
}

TEST(DatabaseUrlRedacted, LeavesUrlWithoutPasswordAlone) {
  EXPECT_EQ(ParseDatabaseUrl("mysql://root@localhost/app").Redacted(),
            "mysql://root@localhost/app");
  EXPECT_EQ(ParseDatabaseUrl("postgresql:///app").Redacted(), "postgresql:///app");
}

TEST(DatabaseUrlRedacted, MasksEmptyPasswordToo) {
  // Whether a password is empty is itself not worth revealing.
  EXPECT_EQ(ParseDatabaseUrl("postgres://u:@h/db").Redacted(), "postgres://u:***@h/db");
}

TEST(DatabaseUrlRedacted, MasksSecretLookingParams) {
  DatabaseUrl url = ParseDatabaseUrl(
      "postgres://h/db?sslmode=verify-full&password=a&SSLPassword=b&api_key=c&Token=d"
      "&client_secret=e&pwd=f&pass=g&application_name=safemig");
  std::string redacted = url.Redacted();
  for (const char* secret : {"=a", "=b", "=c", "=d", "=e", "=f", "=g"}) {
    EXPECT_EQ(redacted.find(secret), std::string::npos) << secret << " in " << redacted;
  }
  EXPECT_NE(redacted.find("sslmode=verify-full"), std::string::npos);
  EXPECT_NE(redacted.find("application_name=safemig"), std::string::npos);
  EXPECT_NE(redacted.find("SSLPassword=***"), std::string::npos);
}

TEST(DatabaseUrlRedacted, RebracketsIpv6AndReencodesSpecialCharacters) {
  DatabaseUrl url =
      ParseDatabaseUrl("postgres://me%40corp:x@[::1]:5432/my%2Fdb?cert=%2Fetc%2Fc.pem");
  EXPECT_EQ(url.Redacted(), "postgres://me%40corp:***@[::1]:5432/my%2Fdb?cert=/etc/c.pem");
}

TEST(DatabaseUrlRedacted, RoundTripsThroughParse) {
  for (const char* text :
       {"postgres://app:pw@db.example.com:6543/shop?sslmode=require&connect_timeout=5",
        "mysql://r%3Aoot@[fe80::1]/my%20db", "postgres://%2Fvar%2Frun%2Fpostgresql/app",
        "sqlite:data/app.db?mode=ro", "sqlite:///abs/my%3Ffile.db", "sqlite::memory:"}) {
    DatabaseUrl original = ParseDatabaseUrl(text);
    DatabaseUrl again = ParseDatabaseUrl(original.Redacted());
    EXPECT_EQ(again.engine, original.engine) << text;
    EXPECT_EQ(again.scheme, original.scheme) << text;
    EXPECT_EQ(again.user, original.user) << text;
    EXPECT_EQ(again.password.has_value(), original.password.has_value()) << text;
    EXPECT_EQ(again.host, original.host) << text;
    EXPECT_EQ(again.port, original.port) << text;
    EXPECT_EQ(again.database, original.database) << text;
    EXPECT_EQ(again.path, original.path) << text;
    EXPECT_EQ(again.params, original.params) << text;
  }
}

TEST(DatabaseUrlRedacted, WritesSqliteUrlsReadably) {
  EXPECT_EQ(ParseDatabaseUrl("sqlite://data/app.db").Redacted(), "sqlite:data/app.db");
  EXPECT_EQ(ParseDatabaseUrl("sqlite:///abs/path.db").Redacted(), "sqlite:///abs/path.db");
  EXPECT_EQ(ParseDatabaseUrl("sqlite::memory:").Redacted(), "sqlite::memory:");
  EXPECT_EQ(ParseDatabaseUrl("sqlite:app.db?key=x&mode=ro&password=y").Redacted(),
            "sqlite:app.db?key=x&mode=ro&password=***");
}

TEST(DatabaseUrlRedacted, UsesEngineNameForDefaultConstructedUrl) {
  DatabaseUrl url;
  url.engine = Engine::kPostgres;
  url.host = "h";
  url.database = "db";
  url.password = "pw";
  EXPECT_EQ(url.Redacted(), "postgres://:***@h/db");
}

TEST(RedactSecrets, MasksPasswordInUrl) {
  EXPECT_EQ(RedactSecrets("connecting to postgres://app:hunter2@db:5432/shop now"),
            "connecting to postgres://app:***@db:5432/shop now");
}

TEST(RedactSecrets, MasksPasswordContainingAt) {
  EXPECT_EQ(RedactSecrets("mysql://root:p@ss@w0rd@db/app"), "mysql://root:***@db/app");
}

TEST(RedactSecrets, MasksPercentEncodedPassword) {
  EXPECT_EQ(RedactSecrets("postgres://u:p%40ss%3A@h/db"), "postgres://u:***@h/db");
}

TEST(RedactSecrets, MasksPasswordContainingColonSlashQuestionAndHash) {
  EXPECT_EQ(RedactSecrets("postgres://u:a:b/c?d#e@h/db x"), "postgres://u:***@h/db x");
}

TEST(RedactSecrets, MasksQuotedUrlWithSpaceInPassword) {
  EXPECT_EQ(RedactSecrets("url = \"postgres://u:pa ss@h/db\" # prod"),
            "url = \"postgres://u:***@h/db\" # prod");
}

TEST(RedactSecrets, MasksUrlsOfAnyScheme) {
  EXPECT_EQ(RedactSecrets("proxy https://bob:tok@proxy:3128 and redis://:pw@cache:6379/0"),
            "proxy https://bob:***@proxy:3128 and redis://:***@cache:6379/0");
}

TEST(RedactSecrets, MasksEveryUrlInText) {
  EXPECT_EQ(RedactSecrets("from postgres://a:one@h1/db to mysql://b:two@h2/db"),
            "from postgres://a:***@h1/db to mysql://b:***@h2/db");
}

TEST(RedactSecrets, MasksUrlInsideJsonWithEmailAfterIt) {
  EXPECT_EQ(RedactSecrets(R"({"url":"postgres://u:pw@h/db","owner":"dba@example.com"})"),
            R"({"url":"postgres://u:***@h/db","owner":"dba@example.com"})");
}

TEST(RedactSecrets, MasksPasswordInLibpqConninfo) {
  EXPECT_EQ(RedactSecrets("host=db port=5432 password=hunter2 dbname=app"),
            "host=db port=5432 password=*** dbname=app");
}

TEST(RedactSecrets, MasksQuotedLibpqValueWithSpacesAndEscapes) {
  EXPECT_EQ(RedactSecrets("host=db password = 'it\\'s a secret' user=app"),
            "host=db password = '***' user=app");
  EXPECT_EQ(RedactSecrets("password=\"two words\" sslmode=require"),
            "password=\"***\" sslmode=require");
}

TEST(RedactSecrets, MasksConninfoEchoedInDriverError) {
  std::string error =
      "connection to server failed: invalid connection option \"sslmod\" in "
      "\"host=db.internal user=app password=Tr0ub4dor&3 sslmod=require\"";
  std::string redacted = RedactSecrets(error);
  EXPECT_EQ(redacted.find("Tr0ub4dor"), std::string::npos);
  EXPECT_NE(redacted.find("password=*** sslmod=require"), std::string::npos);
  EXPECT_NE(redacted.find("invalid connection option \"sslmod\""), std::string::npos);
}

TEST(RedactSecrets, MasksEnvironmentVariableAssignments) {
  EXPECT_EQ(RedactSecrets("PGPASSWORD=hunter2 pg_dump app"), "PGPASSWORD=*** pg_dump app");
  EXPECT_EQ(RedactSecrets("env MYSQL_PWD='x y' mysqldump"), "env MYSQL_PWD='***' mysqldump");
  EXPECT_EQ(RedactSecrets("export AWS_SECRET_ACCESS_KEY=abc"), "export AWS_SECRET_ACCESS_KEY=***");
}

TEST(RedactSecrets, MasksQueryParametersButKeepsTheOthers) {
  EXPECT_EQ(RedactSecrets("postgres://h/db?password=hunter2&sslmode=require"),
            "postgres://h/db?password=***&sslmode=require");
  EXPECT_EQ(RedactSecrets("mysql://h/db?ssl-mode=REQUIRED&api_key=k1#x"),
            "mysql://h/db?ssl-mode=REQUIRED&api_key=***#x");
}

TEST(RedactSecrets, MasksCaseInsensitiveKeysAndCommandLineFlags) {
  EXPECT_EQ(RedactSecrets("PASSWORD=a Password=b"), "PASSWORD=*** Password=***");
  EXPECT_EQ(RedactSecrets("mysql --password=hunter2 -u root"), "mysql --password=*** -u root");
  EXPECT_EQ(RedactSecrets("Server=h;Pwd=x;"), "Server=h;Pwd=***");
}

TEST(RedactSecrets, MasksJsonSecretFields) {
  EXPECT_EQ(RedactSecrets(R"({"user": "app", "password": "hunter2", "token":"t"})"),
            R"({"user": "app", "password": "***", "token":"***"})");
}

TEST(RedactSecrets, LeavesOrdinaryTextUntouched) {
  for (const char* text : {
           "password authentication failed for user \"app\"",
           "Access denied for user 'root'@'10.0.0.7' (using password: YES)",
           "mail dba@example.com or see https://example.com/docs:1",
           "host=db port=5432 dbname=app sslmode=require",
           "postgres://app@db:5432/shop?sslmode=require",
           "postgres://db.example.com:5432/shop",
           "duplicate key value violates unique constraint; Key (id)=(5) already exists",
           "password=",
           "a://b c://d",
           "",
       }) {
    EXPECT_EQ(RedactSecrets(text), text);
  }
}

TEST(RedactSecrets, LeavesEmptyUrlPasswordAlone) {
  EXPECT_EQ(RedactSecrets("postgres://u:@h/db"), "postgres://u:@h/db");
}

TEST(RedactSecrets, IsIdempotent) {
  for (const char* text : {
           "postgres://u:p@ss@h/db?password=x&sslmode=require",
           "host=db password='a b' user=x",
           "password=\"unterminated",
           "postgres://u:p@h/db?application_name=me@laptop",
           "PGPASSWORD=x MYSQL_PWD=y",
           R"({"url":"postgres://u:a\"b@h/db","password":"x"})",
           "mysql://root:p:w/d@[::1]:3306/app and password = secret",
       }) {
    std::string once = RedactSecrets(text);
    EXPECT_EQ(RedactSecrets(once), once) << text;
  }
}

TEST(RedactSecrets, NeverLetsAPasswordThrough) {
  const std::string pw = "Zq9xWv";
  for (std::string text : {
           "postgres://u:PW@h/db",
           "postgres://u:PW@@h/db",
           "postgres://u:x@PW@h/db",
           "postgres://u:PW/PW@h/db",
           "'postgres://u:PW PW@h/db'",
           "password=PW",
           "password = 'PW'",
           "?password=PW&a=b",
           "PGPASSWORD=\"PW\"",
           "token:x secret=PW",
           "postgres://u:PW@h/db?x=a@b",
       }) {
    for (size_t at = text.find("PW"); at != std::string::npos; at = text.find("PW")) {
      text.replace(at, 2, pw);
    }
    EXPECT_EQ(RedactSecrets(text).find(pw), std::string::npos) << text;
  }
}

TEST(RedactSecrets, MasksWhatRedactedWouldMask) {
  DatabaseUrl url = ParseDatabaseUrl("postgres://app:hunter2@db/shop?sslpassword=k");
  std::string raw = "postgres://app:hunter2@db/shop?sslpassword=k";
  EXPECT_EQ(RedactSecrets(raw), url.Redacted());
}

}  // namespace
}  // namespace safemig
