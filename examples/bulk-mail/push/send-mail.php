<?php

/*
 * Sends one mail: php-fpm runs this script for each task of the queue
 * "mail" (deferd's fastcgi target, no faster than the rate in the config
 * file). Sending here means writing the message into the outbox folder as
 * <task id>.eml. A task may run twice (delivery is at least once): it then
 * writes the same file again rather than a second mail.
 *
 * A mail to a .invalid domain throws, as an SMTP client would: Defer\Handler
 * turns the exception into a failed attempt, deferd retries it and, after the
 * queue's max_attempts, keeps it as failed with the exception as last_error.
 */

declare(strict_types=1);

require dirname(__DIR__) . '/bootstrap.php';

use Defer\Handler;
use Defer\PushedTask;

Handler::run(static function (PushedTask $task): void {
    $to = $task->payload['to'] ?? throw new InvalidArgumentException('the payload has no "to"');
    $subject = $task->payload['subject'] ?? throw new InvalidArgumentException('the payload has no "subject"');
    if (preg_match('/@(.+\.invalid)$/', $to, $m) === 1) {
        throw new RuntimeException("SMTP 550 5.1.2 <$to>: no mail server for {$m[1]}");
    }

    $outbox = setting('OUTBOX');
    $file = sprintf('%s/%d.eml', $outbox, $task->id);
    // Written aside and renamed, so that the outbox never holds half a mail.
    $partial = sprintf('%s/.%d.%d.partial', $outbox, $task->id, getmypid());
    if (file_put_contents($partial, message($task, $to, $subject)) === false || !rename($partial, $file)) {
        throw new RuntimeException("cannot write $file");
    }
});

/** The mail as an RFC 5322 message. */
function message(PushedTask $task, string $to, string $subject): string
{
    $name = strstr($to, '@', true);
    $headers = [
        'From' => 'Newsletter <newsletter@bulk-mail.example>',
        'To' => header_value($to),
        'Subject' => encoded_word($subject),
        'Date' => date(DATE_RFC2822),
        'Message-ID' => "<task-{$task->id}@bulk-mail.example>",
        'MIME-Version' => '1.0',
        'Content-Type' => 'text/plain; charset=utf-8',
        'Content-Transfer-Encoding' => '8bit',
    ];
    $head = '';
    foreach ($headers as $field => $value) {
        $head .= "$field: $value\r\n";
    }
    $body = "Hello $name,\r\n\r\nthis is \"$subject\".\r\n\r\n-- \r\n"
        . "Sent by task {$task->id} of queue {$task->queue}, attempt {$task->attempt}.\r\n";

    return $head . "\r\n" . $body;
}

/** A header value as it is, refusing what would end the header early. */
function header_value(string $value): string
{
    if (preg_match('/[\x00-\x1f\x7f]/', $value) === 1) {
        throw new InvalidArgumentException('a header value contains a control character: ' . json_encode($value));
    }

    return $value;
}

/** A header value in RFC 2047 encoded words if it is not plain ASCII, folded to stay within 76 columns. */
function encoded_word(string $value): string
{
    $value = header_value($value);
    if (preg_match('/[^\x20-\x7e]/', $value) !== 1) {
        return $value;
    }
    // 45 bytes of UTF-8 become 60 of base64: with "=?UTF-8?B?" and "?=", 72.
    preg_match_all('/./us', $value, $chars);
    $words = [];
    $chunk = '';
    foreach ($chars[0] as $char) {
        if (strlen($chunk) + strlen($char) > 45) {
            $words[] = $chunk;
            $chunk = '';
        }
        $chunk .= $char;
    }
    $words[] = $chunk;

    return implode("\r\n ", array_map(static fn (string $w): string => '=?UTF-8?B?' . base64_encode($w) . '?=', $words));
}
