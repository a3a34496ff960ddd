<?php

declare(strict_types=1);

namespace Defer\Tests\Support;

/**
 * The deferd processes of one phpunit run: the shared one that most tests
 * use, started by the bootstrap, and the ones a test starts with other flags
 * (a token, drain mode, a restart). Every one is stopped and checked; a
 * problem fails the test that stops it, or, for the shared server,
 * ZzServerShutdownTest. Should that test not run (a --filter), the shutdown
 * function stops the server and ends the run with status 1 on a problem.
 */
final class Servers
{
    /** Flags of the shared server: a small --http-max-body makes batch splitting cheap to test. */
    public const SHARED_MAX_BODY = 1048576;

    private static ?Deferd $shared = null;
    private static string $binary = '';
    private static string $dir = '';
    /** @var list<Deferd> started by tests, stopped by them or at exit */
    private static array $extra = [];
    /** @var list<string> */
    private static array $problems = [];

    public static function init(string $binary): void
    {
        self::$binary = $binary;
        self::$dir = sys_get_temp_dir() . '/defer-php-client-tests.' . getmypid() . '.' . bin2hex(random_bytes(3));
        if (!mkdir(self::$dir, 0700)) {
            throw new \RuntimeException('cannot create ' . self::$dir);
        }
        register_shutdown_function([self::class, 'atExit']);
        self::$shared = self::create(['--http-max-body', (string) self::SHARED_MAX_BODY]);
        self::$shared->start();
    }

    public static function shared(): Deferd
    {
        if (self::$shared === null || !self::$shared->isRunning()) {
            throw new \LogicException('the shared deferd is not running');
        }

        return self::$shared;
    }

    /** A directory for a test's own files, removed after a clean run. */
    public static function dir(): string
    {
        return self::$dir;
    }

    /**
     * Starts a server of a test's own, with extra flags.
     *
     * @param list<string> $args
     */
    public static function start(array $args = [], ?string $dataDir = null): Deferd
    {
        $server = self::create($args, $dataDir);
        $server->start();
        self::$extra[] = $server;

        return $server;
    }

    /**
     * @param list<string> $args
     */
    private static function create(array $args, ?string $dataDir = null): Deferd
    {
        if ($dataDir === null) {
            $dataDir = self::$dir . '/data-' . bin2hex(random_bytes(4));
        }

        return new Deferd(self::$binary, $dataDir, self::$dir, $args);
    }

    /**
     * Stops a server; returns its problems (also kept for the exit status).
     *
     * @return list<string>
     */
    public static function stop(Deferd $server): array
    {
        return self::record($server->stop());
    }

    /**
     * @return list<string>
     */
    public static function restart(Deferd $server): array
    {
        return self::record($server->restart());
    }

    /**
     * @return list<string>
     */
    public static function stopShared(): array
    {
        return self::$shared === null ? [] : self::stop(self::$shared);
    }

    /**
     * @param list<string> $problems
     *
     * @return list<string>
     */
    private static function record(array $problems): array
    {
        array_push(self::$problems, ...$problems);

        return $problems;
    }

    public static function atExit(): void
    {
        // Every server not stopped yet, including one that died meanwhile:
        // stop() reports that too.
        foreach (array_merge(self::$extra, self::$shared === null ? [] : [self::$shared]) as $server) {
            self::stop($server);
        }
        if (self::$problems !== []) {
            fwrite(STDERR, "\nclients/php tests: deferd problems:\n" . implode("\n", self::$problems) . "\n");
            fwrite(STDERR, 'files kept in ' . self::$dir . "\n");
            exit(1);
        }
        exec('rm -rf ' . escapeshellarg(self::$dir));
    }
}
