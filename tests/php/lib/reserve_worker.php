<?php
// A worker process for blocking reserves: a test cannot block in reserve()
// and put the job that wakes it from the same process.
//
//   php reserve_worker.php PORT TUBE[,TUBE...] reserve|TIMEOUT_S
//
// Prints one JSON line: {"id":N,"data":BASE64} for a job, {"timed_out":true}
// for reserveWithTimeout's null, or {"exception":CLASS,"message":...}; then
// keeps the connection (and so a reserved job) until stdin closes.

declare(strict_types=1);

require __DIR__ . '/autoload.php';

use Pheanstalk\Pheanstalk;

[, $port, $tubes, $mode] = $argv;
$p = Pheanstalk::create('127.0.0.1', (int)$port, 10);
$tubes = explode(',', $tubes);
foreach ($tubes as $t) {
    $p->watch($t);
}
if (!in_array('default', $tubes, true)) {
    $p->ignore('default');
}
try {
    $job = $mode === 'reserve' ? $p->reserve() : $p->reserveWithTimeout((int)$mode);
    $out = $job === null ? ['timed_out' => true] : ['id' => $job->getId(), 'data' => base64_encode($job->getData())];
} catch (\Throwable $e) {
    $out = ['exception' => get_class($e), 'message' => $e->getMessage()];
}
echo json_encode($out), "\n";
fflush(STDOUT);
stream_get_contents(STDIN);
