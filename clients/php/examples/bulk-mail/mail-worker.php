<?php

/*
 * Sends the mails queued by send-newsletter.php. deferd speaks the beanstalk
 * protocol, so a worker is an ordinary pheanstalk worker: it reserves from
 * the tube "mail" and receives each payload as its compact JSON text.
 *
 *     php mail-worker.php                 # runs until stopped
 *     php mail-worker.php --until-empty   # stops when the tube is empty
 */

declare(strict_types=1);

require 'vendor/autoload.php';

use Pheanstalk\Contract\PheanstalkInterface;
use Pheanstalk\Pheanstalk;

function send_mail(string $to, string $template, string $issue): void
{
    // Your mailer here (Symfony Mailer, PHPMailer, ...).
    echo "sent $template $issue to $to\n";
}

$untilEmpty = in_array('--until-empty', $argv, true);
$pheanstalk = Pheanstalk::create('127.0.0.1', (int) (getenv('BEANSTALK_PORT') ?: 11300));
$pheanstalk->watchOnly('mail');

while (true) {
    $job = $pheanstalk->reserveWithTimeout(1);
    if ($job === null) {
        if ($untilEmpty) {
            break;
        }
        continue;
    }
    try {
        // {"to":"subscriber1@example.org","template":"newsletter","issue":"2026-11"}
        $mail = json_decode($job->getData(), true, 512, JSON_THROW_ON_ERROR);
        send_mail($mail['to'], $mail['template'], $mail['issue']);
        $pheanstalk->delete($job);
    } catch (Throwable $e) {
        // Try again in a minute; after max_attempts (5) failed attempts
        // deferd buries the task as "failed" instead.
        $pheanstalk->release($job, PheanstalkInterface::DEFAULT_PRIORITY, 60);
    }
}
