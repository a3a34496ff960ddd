<?php

/*
 * Carries out the network restores scheduled by network.php when they are
 * due (deferd makes a task ready at its run_at).
 *
 *     php network-worker.php [--until-empty]
 */

declare(strict_types=1);

require 'vendor/autoload.php';

use Pheanstalk\Pheanstalk;

$untilEmpty = in_array('--until-empty', $argv, true);
$pheanstalk = Pheanstalk::create('127.0.0.1', (int) (getenv('BEANSTALK_PORT') ?: 11300));
$pheanstalk->watchOnly('network');

while (($job = $pheanstalk->reserveWithTimeout(1)) !== null || !$untilEmpty) {
    if ($job === null) {
        continue;
    }
    // {"room":301,"action":"restore"}
    $task = json_decode($job->getData(), true, 512, JSON_THROW_ON_ERROR);
    echo "firewall: room {$task['room']} open (end of lesson)\n"; // your firewall call here
    $pheanstalk->delete($job);
}
