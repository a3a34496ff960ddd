<?php
// The servers of one phpunit run: the shared one every test talks to, and
// any extra ones a test starts with other flags. All are stopped and checked
// before the run ends (ZzServerShutdownTest, or the shutdown function as a
// fallback when that test was filtered out or never reached).

declare(strict_types=1);

namespace Defer\PhpTests;

final class Harness
{
    /** @var Server|null */
    public static $main = null;
    /** @var string */
    public static $bin = '';
    /** @var bool */
    public static $reference = false;
    /** @var string */
    public static $dir = '';
    /** @var string[] problems found when stopping servers */
    private static $problems = [];
    /** @var bool */
    private static $keepDir = false;

    public static function init(): void
    {
        $bin = getenv('DEFERD');
        if ($bin === false || $bin === '') {
            fwrite(STDERR, "tests/php: set DEFERD to the absolute path of the deferd binary\n");
            exit(2);
        }
        if (!is_file($bin) || !is_executable($bin)) {
            fwrite(STDERR, "tests/php: DEFERD=$bin is not an executable file\n");
            exit(2);
        }
        self::$bin = $bin;
        // DEFERD_REFERENCE=1: the binary is the reference beanstalkd, used to
        // check that these tests encode beanstalkd's behaviour.
        self::$reference = getenv('DEFERD_REFERENCE') === '1';

        $dir = sys_get_temp_dir() . '/defer-php-tests.' . getmypid() . '.' . bin2hex(random_bytes(4));
        if (!mkdir($dir, 0700)) {
            fwrite(STDERR, "tests/php: cannot create $dir\n");
            exit(2);
        }
        self::$dir = $dir;
        // Keep phpunit's result cache out of the working tree.
        $_ENV['PHPUNIT_RESULT_CACHE'] = "$dir/phpunit.result.cache";

        self::$main = new Server($bin, [], $dir, self::$reference);
        try {
            self::$main->start();
        } catch (\Throwable $e) {
            fwrite(STDERR, 'tests/php: ' . $e->getMessage() . "\n");
            exit(2);
        }
        register_shutdown_function([self::class, 'atExit']);
    }

    /** Starts another server with extra flags; it is checked like the main one. */
    public static function startExtra(array $args): Server
    {
        $s = new Server(self::$bin, $args, self::$dir, self::$reference);
        $s->start();
        return $s;
    }

    /** Stops a server and returns its problems (also remembered for the exit status). */
    public static function stop(Server $s): array
    {
        $p = $s->stop();
        if ($p) {
            self::$keepDir = true;
            array_push(self::$problems, ...$p);
        }
        return $p;
    }

    public static function atExit(): void
    {
        if (self::$main !== null && self::$main->isRunning()) {
            self::stop(self::$main);
        }
        if (self::$problems) {
            fwrite(STDERR, "\ntests/php: server problems:\n" . implode("\n", self::$problems) . "\n");
            exit(1);
        }
        if (!self::$keepDir) {
            foreach (glob(self::$dir . '/*') ?: [] as $f) {
                @unlink($f);
            }
            @rmdir(self::$dir);
        }
    }
}
