<?php

/*
 * A PHP pull worker, the way pheanstalk's users write one: watch the tube,
 * reserve, (do nothing), delete, until the tube is empty. reserve with a
 * timeout of 0 answers TIMED_OUT (null) at once when no task is ready, and
 * the worker ends there.
 *
 *   php pull-worker.php --port=11300 --start=UNIX_TIME [--tube=bench]
 *
 * Connects and watches first, then sleeps until --start (a wall-clock
 * time, fractional seconds), so that every worker of a run begins at the
 * same moment, which is when the script starts its clock; PHP's start-up
 * is not measured. Prints: deleted=N start=T end=T (Unix seconds) and
 * cpu_us, the worker's own CPU time (user+system) from the start on.
 */

declare(strict_types=1);

require __DIR__ . '/common.php';

$args = bench_args($argv, ['port', 'start'], ['host' => '127.0.0.1', 'tube' => 'bench']);
bench_load_pheanstalk();

$pheanstalk = Pheanstalk\Pheanstalk::create($args['host'], (int) $args['port']);
$pheanstalk->watchOnly($args['tube']);
$pheanstalk->listTubesWatched(true); // one round trip: the connection is up before the clock starts

$start = (float) $args['start'];
if (microtime(true) < $start) {
    time_sleep_until($start);
}
$began = microtime(true);
$cpu0 = bench_self_cpu_us();
$deleted = 0;
while (($job = $pheanstalk->reserveWithTimeout(0)) !== null) {
    $pheanstalk->delete($job);
    $deleted++;
}
$ended = microtime(true);
printf("deleted=%d start=%.6f end=%.6f cpu_us=%.0f\n", $deleted, $began, $ended, bench_self_cpu_us() - $cpu0);
