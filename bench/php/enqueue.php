<?php

/*
 * Enqueue latency as a PHP application sees it: one process, one client,
 * sequential calls, each timed with hrtime(). After --warmup untimed calls
 * (the connection, PHP's caches), --n timed ones.
 *
 *   php enqueue.php --client=defer --port=11380 --n=20000 [--pid=SERVER_PID]
 *   php enqueue.php --client=pheanstalk --port=11300 --n=20000
 *
 * defer: Defer\Client::dispatch($queue, ['to' => ..., 'n' => $i]) over HTTP.
 * pheanstalk: useTube($queue) once, then put(json_encode(the same array)).
 * Prints one key=value line: n, p50_us, p90_us, p99_us, max_us, mean_us,
 * php_cpu_us_per_op (this process's CPU time per timed call) and, with
 * --pid, srv_cpu_us_per_op (the server's, all threads, same calls).
 */

declare(strict_types=1);

require __DIR__ . '/common.php';

$args = bench_args($argv, ['client', 'port', 'n'], ['host' => '127.0.0.1', 'queue' => 'bench', 'warmup' => '1000', 'pid' => '0']);
$n = (int) $args['n'];
$warmup = (int) $args['warmup'];
$queue = $args['queue'];
$pid = (int) $args['pid'];
if ($n < 1) {
    bench_die('--n must be at least 1');
}

if ($args['client'] === 'defer') {
    bench_load_defer();
    $defer = new Defer\Client(['url' => "http://{$args['host']}:{$args['port']}", 'timeout' => 10]);
    $call = static function (array $payload) use ($defer, $queue): int {
        return $defer->dispatch($queue, $payload)->id;
    };
} elseif ($args['client'] === 'pheanstalk') {
    bench_load_pheanstalk();
    $pheanstalk = Pheanstalk\Pheanstalk::create($args['host'], (int) $args['port']);
    $pheanstalk->useTube($queue);
    $call = static function (array $payload) use ($pheanstalk): int {
        return $pheanstalk->put(json_encode($payload, JSON_THROW_ON_ERROR), 1024, 0, 60)->getId();
    };
} else {
    bench_die("--client must be defer or pheanstalk, not {$args['client']}");
}

$lastId = 0;
$check = static function (int $id) use (&$lastId): void {
    if ($id <= $lastId) {
        bench_die("the server answered id $id after id $lastId");
    }
    $lastId = $id;
};

for ($i = 0; $i < $warmup; $i++) {
    $check($call(['to' => 'x@example.org', 'n' => $i]));
}

$times = [];
$cpu0 = bench_cpu_us($pid);
$self0 = bench_self_cpu_us();
$start = hrtime(true);
for ($i = 0; $i < $n; $i++) {
    $t0 = hrtime(true);
    $id = $call(['to' => 'x@example.org', 'n' => $i]);
    $times[] = hrtime(true) - $t0;
    $check($id);
}
$total = hrtime(true) - $start;
$self1 = bench_self_cpu_us();
$cpu1 = bench_cpu_us($pid);

sort($times);
$at = static fn (float $q): float => $times[min($n - 1, (int) floor($q * $n))] / 1000.0;
printf(
    "client=%s n=%d secs=%.3f ops_per_sec=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f php_cpu_us_per_op=%.2f srv_cpu_us_per_op=%s\n",
    $args['client'],
    $n,
    $total / 1e9,
    $n / ($total / 1e9),
    $at(0.50),
    $at(0.90),
    $at(0.99),
    $times[$n - 1] / 1000.0,
    array_sum($times) / $n / 1000.0,
    ($self1 - $self0) / $n,
    $pid > 0 ? sprintf('%.2f', ($cpu1 - $cpu0) / $n) : '?',
);
