// bp_file_replace_*: the one routine every output goes through. New files
// honour the umask, replaced files keep their mode, symlinks are written
// through, devices/FIFOs/directories are refused, a failure or abort
// leaves the target and no temporary file, stale temporary files of dead
// processes are cleaned up, and over-long names are found up front.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "backprop_file.h"
#include "test_util.h"

namespace {

class ReplaceFile : public testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/bp_replace_XXXXXX";
        dir_ = mkdtemp(tmpl);
        old_mask_ = umask(022);
    }
    void TearDown() override
    {
        umask(old_mask_);
        std::system(("rm -rf '" + dir_ + "'").c_str());
    }
    std::string file(const std::string &name) const { return dir_ + "/" + name; }
    static std::string read(const std::string &p)
    {
        std::ifstream f(p, std::ios::binary);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    static void write(const std::string &p, const std::string &bytes)
    {
        std::ofstream(p, std::ios::binary) << bytes;
    }
    // Names in the directory that contain ".tmp".
    std::vector<std::string> temps() const
    {
        std::vector<std::string> out;
        DIR *d = opendir(dir_.c_str());
        for (dirent *e; d && (e = readdir(d));)
            if (std::string(e->d_name).find(".tmp") != std::string::npos)
                out.push_back(e->d_name);
        if (d)
            closedir(d);
        return out;
    }
    static bp_status replace(const std::string &p, const std::string &bytes)
    {
        bp_file_replace *r = nullptr;
        bp_status st = bp_file_replace_begin(p.c_str(), &r);
        if (st != BP_OK)
            return st;
        st = bp_file_replace_write(r, bytes.data(), bytes.size());
        if (st != BP_OK) {
            bp_file_replace_abort(r);
            return st;
        }
        return bp_file_replace_commit(r);
    }
    static mode_t mode(const std::string &p)
    {
        struct stat sb;
        EXPECT_EQ(stat(p.c_str(), &sb), 0) << p;
        return sb.st_mode & 07777;
    }

    std::string dir_;
    mode_t old_mask_ = 022;
};

TEST_F(ReplaceFile, NewFilesHonourTheUmaskReplacedFilesKeepTheirMode)
{
    std::string p = file("a.txt");
    umask(027);
    ASSERT_EQ(replace(p, "one"), BP_OK) << bp_last_error();
    EXPECT_EQ(read(p), "one");
    EXPECT_EQ(mode(p), 0640u);
    umask(022);
    ASSERT_EQ(chmod(p.c_str(), 0600), 0);
    ASSERT_EQ(replace(p, "two"), BP_OK) << bp_last_error();
    EXPECT_EQ(read(p), "two");
    EXPECT_EQ(mode(p), 0600u);
    EXPECT_TRUE(temps().empty());
}

TEST_F(ReplaceFile, ReplacedFilesKeepTheirOwnerWhenRoot)
{
    if (geteuid() != 0)
        GTEST_SKIP() << "only root can give a file to another user";
    std::string p = file("owned.txt");
    write(p, "x");
    ASSERT_EQ(chown(p.c_str(), 1234, 2345), 0);
    ASSERT_EQ(replace(p, "y"), BP_OK) << bp_last_error();
    struct stat sb;
    ASSERT_EQ(stat(p.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_uid, 1234u);
    EXPECT_EQ(sb.st_gid, 2345u);
}

TEST_F(ReplaceFile, LargeAndFormattedWritesArriveWhole)
{
    std::string p = file("big.bin");
    std::string big(300000, 'x');
    for (size_t i = 0; i < big.size(); i++)
        big[i] = (char)(i * 31 % 251);
    bp_file_replace *r = nullptr;
    ASSERT_EQ(bp_file_replace_begin(p.c_str(), &r), BP_OK);
    ASSERT_EQ(bp_file_replace_printf(r, "%d,%s\n", 42, std::string(2000, 'y').c_str()), BP_OK);
    ASSERT_EQ(bp_file_replace_write(r, big.data(), 100), BP_OK);
    ASSERT_EQ(bp_file_replace_write(r, big.data() + 100, big.size() - 100), BP_OK);
    ASSERT_EQ(bp_file_replace_flush(r), BP_OK);
    // Nothing reaches the target before the commit.
    EXPECT_NE(access(p.c_str(), F_OK), 0);
    ASSERT_EQ(bp_file_replace_commit(r), BP_OK) << bp_last_error();
    EXPECT_EQ(read(p), "42," + std::string(2000, 'y') + "\n" + big);
}

TEST_F(ReplaceFile, AbortLeavesTheTargetAndNoTemporaryFile)
{
    std::string p = file("keep.txt");
    write(p, "original");
    bp_file_replace *r = nullptr;
    ASSERT_EQ(bp_file_replace_begin(p.c_str(), &r), BP_OK);
    ASSERT_EQ(bp_file_replace_write(r, "new", 3), BP_OK);
    EXPECT_EQ(temps().size(), 1u);
    bp_file_replace_abort(r);
    bp_file_replace_abort(nullptr);
    EXPECT_EQ(read(p), "original");
    EXPECT_TRUE(temps().empty());
}

TEST_F(ReplaceFile, SymlinksAreWrittenThroughDanglingOnesRefused)
{
    std::string target = file("real.txt"), link = file("link.txt");
    write(target, "old");
    ASSERT_EQ(symlink("real.txt", link.c_str()), 0);
    ASSERT_EQ(replace(link, "new"), BP_OK) << bp_last_error();
    struct stat sb;
    ASSERT_EQ(lstat(link.c_str(), &sb), 0);
    EXPECT_TRUE(S_ISLNK(sb.st_mode)) << "the link was replaced by a file";
    EXPECT_EQ(read(target), "new");
    std::string dangling = file("dangling.txt");
    ASSERT_EQ(symlink("nowhere/x", dangling.c_str()), 0);
    EXPECT_FAILS(replace(dangling, "x"), BP_ERR_IO, "symbolic link");
    ASSERT_EQ(lstat(dangling.c_str(), &sb), 0);
    EXPECT_TRUE(S_ISLNK(sb.st_mode));
    EXPECT_TRUE(temps().empty());
}

TEST_F(ReplaceFile, DevicesFifosAndDirectoriesAreRefused)
{
    std::string fifo = file("fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_FAILS(replace(fifo, "x"), BP_ERR_IO, "a FIFO, not a regular file");
    EXPECT_FAILS(bp_file_replace_check(fifo.c_str()), BP_ERR_IO, "FIFO");
    struct stat sb;
    ASSERT_EQ(lstat(fifo.c_str(), &sb), 0);
    EXPECT_TRUE(S_ISFIFO(sb.st_mode));
    EXPECT_FAILS(replace("/dev/null", "x"), BP_ERR_IO, "character device");
    ASSERT_EQ(stat("/dev/null", &sb), 0);
    EXPECT_TRUE(S_ISCHR(sb.st_mode));
    EXPECT_FAILS(replace(dir_, "x"), BP_ERR_IO, "a directory");
    EXPECT_FAILS(replace(dir_ + "/", "x"), BP_ERR_INVALID_ARGUMENT, "names a directory");
    EXPECT_FAILS(replace(file("missing/x"), "x"), BP_ERR_IO, "No such file");
    EXPECT_FAILS(replace("", "x"), BP_ERR_INVALID_ARGUMENT, "empty");
    // A symlink to a device is refused too (written through, then not a file).
    std::string devlink = file("null");
    ASSERT_EQ(symlink("/dev/null", devlink.c_str()), 0);
    EXPECT_FAILS(replace(devlink, "x"), BP_ERR_IO, "not a regular file");
    EXPECT_TRUE(temps().empty());
}

TEST_F(ReplaceFile, OverLongNamesAreFoundByTheCheck)
{
    std::string name(250, 'm');
    EXPECT_FAILS(bp_file_replace_check(file(name).c_str()), BP_ERR_INVALID_ARGUMENT, "too long");
    bp_file_replace *r = nullptr;
    EXPECT_FAILS(bp_file_replace_begin(file(name).c_str(), &r), BP_ERR_INVALID_ARGUMENT, "too long");
    EXPECT_EQ(r, nullptr);
    EXPECT_EQ(bp_file_replace_check(file("fine.txt").c_str()), BP_OK) << bp_last_error();
    EXPECT_FAILS(bp_file_replace_check(file("no/such/dir.txt").c_str()), BP_ERR_IO,
                 "does not exist");
}

TEST_F(ReplaceFile, StaleTemporaryFilesOfDeadProcessesAreRemoved)
{
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    ASSERT_GT(child, 0);
    waitpid(child, nullptr, 0); // child's pid is now free (unless reused)
    std::string p = file("m.bin");
    std::string stale = p + ".tmp-" + std::to_string(child) + "-00000000deadbeef";
    std::string live = p + ".tmp-" + std::to_string(getppid()) + "-00000000deadbeef";
    std::string other = file("other.bin.tmp-" + std::to_string(child) + "-0000000000000000");
    write(stale, "s");
    write(live, "l");
    write(other, "o");
    ASSERT_EQ(replace(p, "fresh"), BP_OK) << bp_last_error();
    if (kill(child, 0) != 0) { // not reused by another process meanwhile
        EXPECT_NE(access(stale.c_str(), F_OK), 0) << "a dead process's temporary file stayed";
    }
    EXPECT_EQ(access(live.c_str(), F_OK), 0) << "a running process's temporary file was removed";
    EXPECT_EQ(access(other.c_str(), F_OK), 0) << "another file's temporary file was removed";
}

// Only what this routine could have made, and only when provably stale:
// a user's file that merely starts like a temporary name stays, and so
// does a temporary file whose writer still holds its lock though its pid
// looks dead here (a writer in another PID namespace, or on another host
// of a shared file system), and anything not a regular file.
TEST_F(ReplaceFile, StaleCleanupRemovesOnlyItsOwnDeadTemporaryFiles)
{
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    ASSERT_GT(child, 0);
    waitpid(child, nullptr, 0);
    std::string p = file("m.st"), dead = std::to_string(child);
    std::string notes = p + ".tmp-" + dead + "-notes.txt";
    std::string longer = p + ".tmp-" + dead + "-00000000deadbeef.bak";
    std::string locked = p + ".tmp-" + dead + "-0123456789abcdef";
    std::string dir = p + ".tmp-" + dead + "-fedcba9876543210";
    std::string stale = p + ".tmp-" + dead + "-00000000deadbeef";
    write(notes, "user's notes");
    write(longer, "a backup");
    write(locked, "in progress elsewhere");
    write(stale, "left by a killed writer");
    ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
    int held = open(locked.c_str(), O_RDONLY);
    ASSERT_GE(held, 0);
    ASSERT_EQ(flock(held, LOCK_EX), 0); // as a live writer's lock
    ASSERT_EQ(replace(p, "fresh"), BP_OK) << bp_last_error();
    EXPECT_EQ(read(notes), "user's notes") << "a user's file was removed";
    EXPECT_EQ(read(longer), "a backup") << "a user's file was removed";
    EXPECT_EQ(read(locked), "in progress elsewhere") << "a locked (live) temporary file was removed";
    struct stat sb;
    EXPECT_EQ(stat(dir.c_str(), &sb), 0) << "a directory was removed";
    if (kill(child, 0) != 0) { // the pid not reused meanwhile
        EXPECT_NE(access(stale.c_str(), F_OK), 0) << "a stale temporary file stayed";
    }
    close(held);
    // The writer's own temporary file is locked while it is open.
    bp_file_replace *r = nullptr;
    ASSERT_EQ(bp_file_replace_begin(p.c_str(), &r), BP_OK) << bp_last_error();
    std::vector<std::string> t = temps();
    std::string mine;
    for (const std::string &n : t)
        if (n.find(".tmp-" + std::to_string(getpid()) + "-") != std::string::npos)
            mine = n;
    ASSERT_FALSE(mine.empty());
    int probe = open(file(mine).c_str(), O_RDONLY);
    ASSERT_GE(probe, 0);
    EXPECT_NE(flock(probe, LOCK_EX | LOCK_NB), 0) << "the writer does not hold its lock";
    close(probe);
    ASSERT_EQ(bp_file_replace_commit(r), BP_OK) << bp_last_error();
    EXPECT_EQ(read(p), "");
}

TEST_F(ReplaceFile, ConcurrentWritersNeverCollide)
{
    std::string p = file("shared.txt");
    std::vector<std::thread> threads;
    std::vector<bp_status> st(8, BP_ERR_IO);
    for (int t = 0; t < 8; t++)
        threads.emplace_back([&, t] {
            std::string body(10000, (char)('a' + t));
            st[t] = replace(p, body);
        });
    for (auto &th : threads)
        th.join();
    for (int t = 0; t < 8; t++)
        EXPECT_EQ(st[t], BP_OK);
    std::string got = read(p);
    ASSERT_EQ(got.size(), 10000u);
    EXPECT_EQ(got.find_first_not_of(got[0]), std::string::npos) << "a mixed file";
    EXPECT_TRUE(temps().empty());
}

TEST_F(ReplaceFile, ArgumentsAreChecked)
{
    bp_file_replace *r = nullptr;
    EXPECT_FAILS(bp_file_replace_begin(nullptr, &r), BP_ERR_INVALID_ARGUMENT, "path");
    EXPECT_FAILS(bp_file_replace_begin("x", nullptr), BP_ERR_INVALID_ARGUMENT, "out");
    EXPECT_FAILS(bp_file_replace_write(nullptr, "x", 1), BP_ERR_INVALID_ARGUMENT, "r");
    EXPECT_FAILS(bp_file_replace_commit(nullptr), BP_ERR_INVALID_ARGUMENT, "r");
    EXPECT_FAILS(bp_file_replace_check(nullptr), BP_ERR_INVALID_ARGUMENT, "path");
}

// A model path that is a FIFO is refused at once, not waited on.
TEST_F(ReplaceFile, ModelLoadRefusesAFifoWithoutBlocking)
{
    std::string fifo = file("model.fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    auto t0 = std::chrono::steady_clock::now();
    bp_network *net = nullptr;
    EXPECT_FAILS(bp_model_load(fifo.c_str(), nullptr, &net), BP_ERR_IO, "not a regular file");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    EXPECT_EQ(net, nullptr);
}

} // namespace
