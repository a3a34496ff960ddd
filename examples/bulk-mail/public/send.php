<?php

/*
 * POST /send.php: queues the newsletter, one mail per subscriber - 5,000
 * tasks - in a single request to deferd (Client::dispatchMany, the batch
 * endpoint), and sends the browser back to the page, which shows the mails
 * going out. With "undeliverable" set it queues one mail that cannot be
 * delivered instead, to show what a failing task looks like.
 *
 * Each mail's key is the newsletter and the recipient: sending the same
 * newsletter again while its mails are queued adds none twice.
 */

declare(strict_types=1);

require dirname(__DIR__) . '/bootstrap.php';

use Defer\Client;
use Defer\Exception\DeferException;
use Defer\Task;

/** Back to the page, with what happened in the query string. */
function back(array $outcome): never
{
    header('Location: /?' . http_build_query($outcome), true, 303);
    exit;
}

if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    header('Allow: POST', true, 405);
    exit;
}
$subject = trim((string) ($_POST['subject'] ?? ''));
if ($subject === '' || strlen($subject) > 200 || preg_match('//u', $subject) !== 1 || preg_match('/[\x00-\x1f\x7f]/', $subject) === 1) {
    back(['error' => 'The subject must be one line of 1 to 200 characters.']);
}

$recipients = isset($_POST['undeliverable'])
    ? [UNDELIVERABLE]
    : array_map(static fn (int $n): string => "subscriber$n@example.org", range(1, SUBSCRIBERS));
$newsletter = substr(sha1($subject), 0, 12);
$mails = (static function () use ($recipients, $subject, $newsletter): Generator {
    foreach ($recipients as $to) {
        yield ['payload' => ['to' => $to, 'subject' => $subject], 'key' => "$newsletter/$to"];
    }
})();

$started = hrtime(true);
try {
    // One request for all of them (up to 10,000 a request), all or nothing.
    $tasks = (new Client(['url' => setting('DEFER_URL'), 'timeout' => 30]))->dispatchMany(MAIL_QUEUE, $mails);
} catch (DeferException $e) {
    back(['error' => 'Nothing was queued: ' . $e->getMessage()]);
}
back([
    'queued' => count(array_filter($tasks, static fn (Task $t): bool => $t->isNew())),
    'already' => count(array_filter($tasks, static fn (Task $t): bool => !$t->isNew())),
    'ms' => intdiv(hrtime(true) - $started, 1000000),
]);
