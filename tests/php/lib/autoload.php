<?php
// Autoloading for the tests and their helper processes: Debian's
// php-pda-pheanstalk (its classmap autoloader, or PSR-4 over the same
// directory should that file ever go away) and Defer\PhpTests\ in lib/.

declare(strict_types=1);

if (is_file('/usr/share/php/Pheanstalk/autoload.php')) {
    require_once '/usr/share/php/Pheanstalk/autoload.php';
} else {
    spl_autoload_register(static function (string $class): void {
        if (strncmp($class, 'Pheanstalk\\', 11) === 0) {
            $f = '/usr/share/php/Pheanstalk/' . str_replace('\\', '/', substr($class, 11)) . '.php';
            if (is_file($f)) {
                require $f;
            }
        }
    });
}
if (!class_exists(\Pheanstalk\Pheanstalk::class)) {
    fwrite(STDERR, "tests/php: pheanstalk not found (apt-get install php-pda-pheanstalk)\n");
    exit(2);
}

spl_autoload_register(static function (string $class): void {
    $prefix = 'Defer\\PhpTests\\';
    if (strncmp($class, $prefix, strlen($prefix)) === 0) {
        $f = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($f)) {
            require $f;
        }
    }
});
