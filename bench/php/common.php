<?php

/*
 * Shared by the bench/php.sh helpers: argument parsing, autoloading of the
 * two clients without composer, and reading a server's CPU time from /proc.
 */

declare(strict_types=1);

/** --name=value arguments; every name in $required must be given. */
function bench_args(array $argv, array $required, array $defaults = []): array
{
    $args = $defaults;
    foreach (array_slice($argv, 1) as $arg) {
        if (!preg_match('/^--([a-z_-]+)=(.*)$/s', $arg, $m)) {
            bench_die("bad argument '$arg' (expected --name=value)");
        }
        $args[$m[1]] = $m[2];
    }
    foreach ($required as $name) {
        if (!isset($args[$name]) || $args[$name] === '') {
            bench_die("--$name is required");
        }
    }

    return $args;
}

function bench_die(string $message): never
{
    fwrite(STDERR, basename($_SERVER['argv'][0] ?? 'bench') . ": $message\n");
    exit(2);
}

/** Defer\Client from clients/php/src, the way its tests load it. */
function bench_load_defer(): void
{
    $src = dirname(__DIR__, 2) . '/clients/php/src/';
    spl_autoload_register(static function (string $class) use ($src): void {
        if (str_starts_with($class, 'Defer\\')) {
            $file = $src . str_replace('\\', '/', substr($class, 6)) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    });
}

/** Pheanstalk 4 from its autoload file (PHEANSTALK_AUTOLOAD, else Debian's). */
function bench_load_pheanstalk(): void
{
    $file = getenv('PHEANSTALK_AUTOLOAD') ?: '/usr/share/php/Pheanstalk/autoload.php';
    if (!is_file($file)) {
        bench_die("no pheanstalk at $file (apt-get install php-pda-pheanstalk, or set PHEANSTALK_AUTOLOAD)");
    }
    require_once $file;
}

/**
 * CPU time of process $pid, all threads, in microseconds: the sum of
 * se.sum_exec_runtime (ms, with µs precision) over /proc/PID/task/, or
 * utime+stime from /proc/PID/stat (clock ticks) where sched is missing.
 */
function bench_cpu_us(int $pid): float
{
    if ($pid <= 0) {
        return 0.0;
    }
    $sum = 0.0;
    $found = false;
    foreach (glob("/proc/$pid/task/*/sched") ?: [] as $file) {
        $text = @file_get_contents($file);
        if ($text !== false && preg_match('/^se\.sum_exec_runtime\s*:\s*([0-9.]+)/m', $text, $m)) {
            $sum += (float) $m[1] * 1000.0;
            $found = true;
        }
    }
    if ($found) {
        return $sum;
    }
    $stat = @file_get_contents("/proc/$pid/stat");
    if ($stat === false) {
        return 0.0;
    }
    $fields = explode(' ', substr($stat, strrpos($stat, ')') + 2));

    return ((int) $fields[11] + (int) $fields[12]) * 1e6 / 100; // utime, stime; USER_HZ is 100 on Linux
}

/** This process's own CPU time (user + system), in microseconds. */
function bench_self_cpu_us(): float
{
    $u = getrusage();

    return $u['ru_utime.tv_sec'] * 1e6 + $u['ru_utime.tv_usec'] + $u['ru_stime.tv_sec'] * 1e6 + $u['ru_stime.tv_usec'];
}
