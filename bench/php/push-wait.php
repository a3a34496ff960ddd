<?php

/*
 * Times a push run: resumes the paused queue, then polls the queue
 * (GET /v1/queues/{queue}, one kept-alive connection) until its push
 * counter "succeeded" has gone up by --n. The clock runs from just before
 * the resume request to the poll that saw the last task succeed.
 *
 * Each poll costs the server some CPU time, which would count as the push's
 * own, so the polls are few: the wait between two is half the time the rest
 * of the tasks should take at the rate seen so far, at most 1 s and at least
 * --poll-ms (5), which is then how late the clock can stop. A run takes a
 * few dozen polls, however long it is.
 *
 *   php push-wait.php --port=11380 --queue=fpm --n=20000 [--timeout=300]
 *
 * Prints: secs=S succeeded=N failed=N timed_out=N polls=N. Exit status 1 if
 * an attempt failed or the timeout passed first.
 */

declare(strict_types=1);

require __DIR__ . '/common.php';

$args = bench_args($argv, ['port', 'queue', 'n'], ['host' => '127.0.0.1', 'poll-ms' => '5', 'timeout' => '300']);
$n = (int) $args['n'];
$path = '/v1/queues/' . rawurlencode($args['queue']);

$socket = @stream_socket_client("tcp://{$args['host']}:{$args['port']}", $errno, $error, 5);
if ($socket === false) {
    bench_die("cannot connect to {$args['host']}:{$args['port']}: $error");
}
stream_set_timeout($socket, 10);

/** One request on the kept-alive connection; the decoded JSON answer. */
$request = static function (string $method, string $target) use ($socket): array {
    fwrite($socket, "$method $target HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n");
    $head = '';
    while (!str_ends_with($head, "\r\n\r\n")) {
        $line = fgets($socket);
        if ($line === false) {
            bench_die("$method $target: the connection closed");
        }
        $head .= $line;
    }
    if (!preg_match('#^HTTP/1\.1 (\d+)#', $head, $m) || !preg_match('/^content-length:\s*(\d+)/mi', $head, $len)) {
        bench_die("$method $target: unexpected answer: " . trim($head));
    }
    $body = (int) $len[1] > 0 ? stream_get_contents($socket, (int) $len[1]) : '';
    if ((int) $m[1] !== 200) {
        bench_die("$method $target: status {$m[1]}: $body");
    }

    return json_decode($body, true, 512, JSON_THROW_ON_ERROR);
};
$counters = static function (array $queue) use ($args): array {
    if (!is_array($queue['push'] ?? null)) {
        bench_die("queue {$args['queue']} is not pushed");
    }

    return [$queue['push']['succeeded'], $queue['push']['failed'], $queue['push']['timed_out']];
};

[$ok0, $failed0, $timedOut0] = $counters($request('GET', $path));
$start = hrtime(true);
$request('POST', $path . '/resume');
$deadline = $start + (int) ((float) $args['timeout'] * 1e9);
$minWait = (int) $args['poll-ms'] * 1000;
$polls = 0;
$ok = $ok0;
$now = hrtime(true);
do {
    $elapsed = ($now - $start) / 1e3; // µs
    $done = $ok - $ok0;
    // Nothing done yet: wait as long as has passed (doubling), up to 200 ms.
    $wait = $done > 0 ? $elapsed * ($n - $done) / $done / 2 : min($elapsed, 200000);
    usleep((int) max($minWait, min($wait, 1000000)));
    [$ok, $failed, $timedOut] = $counters($request('GET', $path));
    $polls++;
    $now = hrtime(true);
} while ($ok - $ok0 < $n && $failed === $failed0 && $timedOut === $timedOut0 && $now < $deadline);

printf(
    "secs=%.4f succeeded=%d failed=%d timed_out=%d polls=%d\n",
    ($now - $start) / 1e9,
    $ok - $ok0,
    $failed - $failed0,
    $timedOut - $timedOut0,
    $polls,
);
exit($ok - $ok0 === $n && $failed === $failed0 && $timedOut === $timedOut0 ? 0 : 1);
