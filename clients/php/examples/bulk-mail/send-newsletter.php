<?php

/*
 * POST /newsletter/send: queues one e-mail per subscriber and answers at once.
 * The web request does one HTTP call to deferd, however many subscribers
 * there are; workers (mail-worker.php) send the mails in the background.
 */

declare(strict_types=1);

require 'vendor/autoload.php';

use Defer\Client;
use Defer\Exception\DeferException;

final class NewsletterController
{
    public function __construct(private readonly Client $defer)
    {
    }

    /**
     * @param iterable<string> $recipients
     *
     * @return array{queued: int, first_task: int|null}
     */
    public function send(string $issue, iterable $recipients): array
    {
        $mails = (static function () use ($issue, $recipients): Generator {
            foreach ($recipients as $to) {
                yield [
                    'payload' => ['to' => $to, 'template' => 'newsletter', 'issue' => $issue],
                    // A double click queues nothing twice: a key is unique
                    // among the queue's unfinished tasks.
                    'key' => 'newsletter-' . $issue . '-' . sha1($to),
                ];
            }
        })();

        // One request for up to 10,000 mails, all or nothing.
        $tasks = $this->defer->dispatchMany('mail', $mails, ['ttr' => 120, 'max_attempts' => 5]);

        return ['queued' => count($tasks), 'first_task' => $tasks[0]->id ?? null];
    }
}

// In a real application: the subscribers come from the database, the
// client from the container (one per PHP process).
$subscribers = (static function (): Generator {
    for ($i = 1; $i <= 5000; $i++) {
        yield "subscriber$i@example.org";
    }
})();
$controller = new NewsletterController(new Client(getenv('DEFER_URL') ?: 'http://127.0.0.1:11380'));

header('Content-Type: application/json');
try {
    $result = $controller->send('2026-11', $subscribers);
    http_response_code(202);
    echo json_encode($result), "\n";
} catch (DeferException $e) {
    // DrainingException, StorageFullException, ConnectionException, ...:
    // nothing, or not all, was queued; the message says what happened.
    http_response_code(503);
    echo json_encode(['error' => $e->getMessage()]), "\n";
}
