<?php

declare(strict_types=1);

namespace Defer;

use Throwable;

/**
 * The PHP side of push dispatch (docs/push.md): a script that deferd runs
 * for each task - through php-fpm (fastcgi target), a web server (http
 * target) or the command line (exec target) - hands its work to run():
 *
 *     Defer\Handler::run(function (Defer\PushedTask $task): void {
 *         send_mail($task->payload['to']);   // throws on failure
 *     });
 *
 * run() reads the task from the request or the environment, calls the
 * function, and tells deferd how the attempt went in the only ways deferd
 * listens to: the HTTP status (2xx: done) or the exit status (0: done). An
 * uncaught exception becomes a failed attempt whose reason, kept by deferd as
 * the task's last_error, is "Uncaught <class>: <message>"; deferd then
 * retries the task or, after its last attempt, fails it.
 *
 * The pieces are public and pure where they can be, for tests:
 * fromGlobals() reads the task, handle() runs the function, failureLine()
 * words a failure. Only run() answers and exits.
 */
final class Handler
{
    /** Longest failure line, in bytes: deferd keeps 512 bytes of reason in all. */
    public const LINE_MAX = 240;

    /**
     * Runs $fn for the task deferd pushed to this script and reports the outcome.
     *
     * - $fn returns: the attempt succeeded. On the web the answer is PHP's
     *   status (200, or 204 when $fn printed nothing; a status $fn set itself
     *   is kept, and a non-2xx one fails the attempt); run() returns.
     * - $fn throws: the attempt failed. On the web: status 500 with the
     *   failure line as a text/plain body, and the exception with its trace
     *   in the error log; on the command line: the exception in the error
     *   log (stderr by default), the failure line last on stderr, exit
     *   status 1. Either way run() ends the script.
     * - The payload type is JSON but the payload does not parse: a failed
     *   attempt as above, without calling $fn.
     * - The script was not started by deferd (no task id): status 400, or
     *   exit status 2, with a message saying so; $fn is not called.
     *
     * What $fn prints on the web is buffered, so that a failure can still
     * change the status, and dropped on failure. Should $fn send output out
     * before it fails (ob_flush() and flush()), the status went with it and
     * cannot become a 500: run() then rethrows the exception, and deferd
     * fails the attempt on the PHP fatal error it sees in php-fpm's output
     * (an http target sees only the 200).
     *
     * @param callable(PushedTask): mixed $fn
     */
    public static function run(callable $fn): void
    {
        $cli = self::commandLine();
        try {
            $task = self::fromGlobals();
        } catch (\InvalidArgumentException $e) {
            self::refuse($e->getMessage(), $cli);
        } catch (\JsonException $e) {
            self::fail($e->getMessage(), $cli);
        }

        if ($cli) {
            $error = self::handle($fn, $task);
            if ($error !== null) {
                error_log(self::logMessage($error, $task));
                self::fail(self::failureLine($error), true);
            }

            return;
        }

        ob_start();
        $error = self::handle($fn, $task);
        if ($error === null) {
            if (ob_get_length() === 0 && http_response_code() === 200) {
                http_response_code(204);
            }
            ob_end_flush();

            return;
        }
        ob_end_clean();
        if (headers_sent()) {
            throw $error;
        }
        error_log(self::logMessage($error, $task));
        self::fail(self::failureLine($error), false);
    }

    /**
     * The task pushed to the running script: from $_SERVER and php://input
     * under a web SAPI (php-fpm, a web server), from the DEFER_* environment
     * variables and stdin on the command line.
     *
     * @throws \InvalidArgumentException the script was not started by deferd
     * @throws \JsonException            a JSON payload that does not parse
     */
    public static function fromGlobals(): PushedTask
    {
        if (!self::commandLine()) {
            return PushedTask::fromServer($_SERVER, (string) file_get_contents('php://input'));
        }
        $env = getenv();
        // Started by hand without the variables: refuse at once rather than
        // wait for the end of a terminal's stdin.
        $stdin = isset($env['DEFER_TASK_ID']) ? (string) file_get_contents('php://stdin') : '';

        return PushedTask::fromEnvironment($env, $stdin);
    }

    /**
     * Calls $fn with the task.
     *
     * @param callable(PushedTask): mixed $fn
     *
     * @return Throwable|null null when $fn returned, else what it threw
     */
    public static function handle(callable $fn, PushedTask $task): ?Throwable
    {
        try {
            $fn($task);
        } catch (Throwable $e) {
            return $e;
        }

        return null;
    }

    /**
     * "Uncaught <class>: <first line of the message>", at most LINE_MAX
     * bytes: what deferd keeps as the reason of the failed attempt.
     */
    public static function failureLine(Throwable $e): string
    {
        $message = trim(explode("\n", $e->getMessage(), 2)[0]);
        $line = 'Uncaught ' . $e::class . ($message === '' ? '' : ': ' . $message);

        return self::cut($line, self::LINE_MAX);
    }

    /** The exception in full, trace included, and which task it ended: for the error log. */
    private static function logMessage(Throwable $e, PushedTask $task): string
    {
        return sprintf('Uncaught %s' . "\n" . '  in task %d of queue %s, attempt %d', $e, $task->id, $task->queue, $task->attempt);
    }

    /** A failed attempt: status 500 or exit status 1, and the line as the answer. */
    private static function fail(string $line, bool $cli): never
    {
        if ($cli) {
            fwrite(STDERR, $line . "\n");
            exit(1);
        }
        self::answer(500, $line);
    }

    /** Not a request from deferd: status 400 or exit status 2; nothing ran. */
    private static function refuse(string $reason, bool $cli): never
    {
        $script = basename((string) ($_SERVER['SCRIPT_FILENAME'] ?? 'this script'));
        $message = "$script: $reason (it runs the tasks of a deferd push queue: docs/push.md)";
        if ($cli) {
            fwrite(STDERR, $message . "\n");
            exit(2);
        }
        self::answer(400, $message);
    }

    private static function answer(int $status, string $body): never
    {
        http_response_code($status);
        header('Content-Type: text/plain; charset=utf-8');
        echo $body, "\n";
        exit;
    }

    private static function commandLine(): bool
    {
        return PHP_SAPI === 'cli' || PHP_SAPI === 'phpdbg';
    }

    /** At most $max bytes of $s, cut on a UTF-8 character boundary and marked with "...". */
    private static function cut(string $s, int $max): string
    {
        if (strlen($s) <= $max) {
            return $s;
        }
        $end = $max - 3;
        // Back off continuation bytes (10xxxxxx) so that no character is split.
        while ($end > 0 && (ord($s[$end]) & 0xC0) === 0x80) {
            $end--;
        }

        return substr($s, 0, $end) . '...';
    }
}
