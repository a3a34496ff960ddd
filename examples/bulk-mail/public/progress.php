<?php

/*
 * GET /progress.php: how the newsletter is going, as JSON for the page's
 * refresh loop - the queue's counters as deferd reports them
 * (GET /v1/queues/mail), the mails in the outbox, and the failed tasks with
 * the reason deferd kept.
 */

declare(strict_types=1);

require dirname(__DIR__) . '/bootstrap.php';

use Defer\Client;
use Defer\Exception\DeferException;
use Defer\TaskState;

header('Content-Type: application/json');
header('Cache-Control: no-store');
try {
    $defer = new Client(setting('DEFER_URL'));
    $queue = $defer->queue(MAIL_QUEUE); // null until the first mail is queued
    $failures = [];
    if ($queue !== null && $queue->failed > 0) {
        foreach ($defer->tasks(MAIL_QUEUE, TaskState::Failed, true, 10) as $task) {
            $failures[] = ['id' => $task->id, 'to' => $task->payload['to'] ?? null, 'attempts' => $task->attempts, 'last_error' => $task->lastError];
            if (count($failures) === 10) {
                break;
            }
        }
    }
} catch (DeferException $e) {
    http_response_code(503);
    echo json_encode(['error' => $e->getMessage()]), "\n";
    exit;
}

echo json_encode([
    'enqueued' => $queue->totalEnqueued ?? 0,
    'ready' => $queue->ready ?? 0,
    'delayed' => $queue->delayed ?? 0,   // waiting to be retried
    'reserved' => $queue->reserved ?? 0, // being sent right now
    'done' => $queue->totalDone ?? 0,
    'failed' => $queue->failed ?? 0,
    'done_per_second' => $queue->donePerSecond ?? 0.0,
    'outbox' => count(glob(setting('OUTBOX') . '/*.eml') ?: []),
    'failures' => $failures,
], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION), "\n";
